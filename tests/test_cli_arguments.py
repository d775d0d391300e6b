"""Every CLI checks its arguments before any work: one line on stderr, exit code 2, no
traceback; the dataset is checked before the first map is computed."""
import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, sirst_copy

from baselines.__main__ import main as baselines_main
from sirst.cli import available_cores

sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_detections  # noqa: E402
import main as main_job  # noqa: E402
import visualize_data  # noqa: E402

DATASET = "sirst_v2_mini_test"


def _exit_code(fn, argv):
    """Exit code of a CLI ``main(argv)``, whether it returns it or argparse exits."""
    try:
        return fn(argv)
    except SystemExit as e:
        return e.code


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and "error: " in lines[0] and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (["--k", "0"], "argument --k: 0 must be at least 1"),
    (["--k", "-2"], "argument --k: -2 must be at least 1"),
    (["--limit", "0"], "argument --limit: 0 must be at least 1"),
    (["--workers", "-3"], "argument --workers: -3 must be at least 0 (0 = all"),
    (["--workers", "two"], "argument --workers: 'two' is not an integer"),
    (["--param", "size=-5"], "tophat: parameter size=-5 must be at least 1 (its default is 5)"),
    (["--param", "size=abc"], "tophat: parameter size='abc' must be an integer like its default"),
    (["--param", "size=2.5"], "tophat: parameter size=2.5 must be an integer"),
    (["--param", "nope=1"], "tophat: unknown parameter(s) ['nope']"),
    (["--dataset", "sirst_v2_nope"], "splits/nope.txt: unknown split 'nope'; available: ["),
    (["--dataset", "nope"], "unknown dataset 'nope'; registered SIRST datasets: ["),
])
def test_baselines_run_refuses_bad_arguments(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    argv = ["run", "--method", "tophat", "--dataset", DATASET, "--output", str(out),
            "--no-eval", *args]
    assert _exit_code(baselines_main, argv) == 2
    assert message in _one_error_line(capsys)
    assert not (out / "partial").exists() or not any((out / "partial").iterdir())


def test_output_paths_that_are_files_or_not_creatable(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, message in ((a_file, "output folder"), (a_file / "sub", "cannot create the output "
                                                                     "folder")):
        argv = ["run", "--method", "tophat", "--dataset", DATASET, "--output", str(out)]
        assert _exit_code(baselines_main, argv) == 2
        line = _one_error_line(capsys)
        assert message in line and str(out) in line
    assert _exit_code(main_job.main, ["--output", str(a_file)]) == 2
    assert "is a file" in _one_error_line(capsys)
    assert _exit_code(visualize_data.main, ["--dataset", DATASET, "--output-dir",
                                            str(a_file / "x")]) == 2
    assert "cannot create the output folder" in _one_error_line(capsys)
    results = tmp_path / "dets.json"
    results.write_text("[]")
    assert _exit_code(eval_detections.main, ["--dataset", DATASET, "--results", str(results),
                                             "--output", str(tmp_path)]) == 2
    assert f"output file {tmp_path} is a folder" in _one_error_line(capsys)


def test_counts_of_the_other_tools(tmp_path, capsys):
    for fn, argv, message in (
            (main_job.main, ["--pictures", "-1"], "argument --pictures: -1 must be at least 0"),
            (main_job.main, ["--workers", "-1"], "argument --workers: -1 must be at least 0"),
            (visualize_data.main, ["--output-dir", str(tmp_path), "--num", "-2"],
             "argument --num: -2 must be at least 0"),
            (visualize_data.main, ["--output-dir", str(tmp_path), "--top-k", "0"],
             "argument --top-k: 0 must be at least 1"),
            (eval_detections.main, ["--results", "x.json", "--score-threshold", "nan"],
             "argument --score-threshold: 'nan' is not a finite number")):
        assert _exit_code(fn, argv) == 2
        assert message in _one_error_line(capsys)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/benchmark_classical.py"),
                        "--dataset", DATASET, "--output", str(tmp_path), "--methods", "tophat",
                        "--param", "tophat.size=0"], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "tophat: parameter size=0 must be at least 1" in r.stderr


def test_workers_are_capped_at_the_core_count(tmp_path, capsys):
    cores = available_cores()
    for asked, expect in ((str(cores + 97), cores), ("0", cores)):
        out = tmp_path / asked
        argv = ["run", "--method", "tophat", "--dataset", DATASET, "--output", str(out),
                "--no-eval", "--no-progress", "--limit", "2", "--workers", asked]
        assert baselines_main(argv) == 0
        assert json.loads((out / "run.json").read_text())["workers"] == expect
    assert f"{cores + 97} workers capped at the {cores} available cores" in capsys.readouterr().err


def test_a_malformed_xml_fails_before_any_map_is_computed(tmp_path, sirst_root, capsys,
                                                          monkeypatch):
    with open(os.path.join(sirst_root, "splits", "mini_test.txt")) as f:
        ids = [line.strip() for line in f if line.strip()][:3]
    root = sirst_copy(tmp_path / "data", sirst_root, ids)
    xml = root / "annotations/bboxes" / f"{ids[2]}.xml"
    text = xml.read_text()
    xml.unlink()
    xml.write_text(text[: len(text) // 2])
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "data"))  # sirst_v2_s is read here
    out = tmp_path / "out"
    argv = ["run", "--method", "tophat", "--dataset", "sirst_v2_s", "--output", str(out)]
    assert baselines_main(argv) == 2
    assert f"{ids[2]}.xml: malformed XML" in _one_error_line(capsys)
    assert not (out / "partial").exists() or not any((out / "partial").iterdir())
