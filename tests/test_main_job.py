"""The main job (tools/main.py) end to end on a small real split: OSCAR, trained briefly since
no trained recipe is at hand, beside a classical method; one table, the PR plot, pictures,
and the reuse of a second run."""
import json
import os
import sys

import cv2
import pytest

from deepinfrared_d2.evaluation import evaluate_records, load_results_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import main as main_job  # noqa: E402

DETECTOR = "oscar_R18_FPN_P2_cpu"


def test_main_job_compares_detector_and_classical_and_reuses(tmp_path, capsys, monkeypatch,
                                                             sirst_root):
    # a working directory without output/oscar_R18_FPN_P2_cpu/model_final.pth: it trains
    monkeypatch.setenv("DETECTRON2_DATASETS", os.path.dirname(sirst_root))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "main"
    argv = ["--dataset", "sirst_v2_mini_test", "--output", str(out), "--methods", "tophat",
            "--train-iters", "2", "--pictures", "2"]
    assert main_job.main(argv) == 0
    printed = capsys.readouterr().out
    assert "training the detector for 2 iterations" in printed
    assert (out / DETECTOR / "train" / "model_final.pth").is_file()
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert "mNoCoAP" in table[0] and "ms/image" in table[0]
    assert [line.split("|")[1].strip() for line in table[1:]] == [DETECTOR, "tophat"]
    metrics = json.loads((out / "metrics.json").read_text())["methods"]
    for name in (DETECTOR, "tophat"):
        # one number per thing: the results file written, evaluated on its own, agrees exactly
        again = evaluate_records("sirst_v2_mini_test",
                                 load_results_file(str(out / name / "results.json")))
        assert metrics[name]["noco"] == again["noco"]
        assert metrics[name]["irstd"] == again["irstd"]
        assert 0.0 <= metrics[name]["noco"]["mNoCoAP"] <= 1.0
        assert metrics[name]["seconds_per_image_median"] > 0
        assert len(os.listdir(out / "pictures" / name)) == 2
    plot = cv2.imread(str(out / "pr_curves.png"))
    assert plot is not None and plot.shape[1] > plot.shape[0]  # two panels side by side

    # A second run computes nothing again and prints the same figures.
    assert main_job.main(argv[:-2] + ["--pictures", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"reusing {out / DETECTOR / 'results.json'}" in printed
    assert "training the detector" not in printed
    assert json.loads((out / "tophat" / "run.json").read_text())["resumed_images"] == 4
    assert json.loads((out / "metrics.json").read_text())["methods"] == metrics


@pytest.mark.parametrize("argv, message", [
    (["--detector-weights", "nope.pth"], "--detector-weights nope.pth: no such file"),
    (["--no-detector", "--methods"], "nothing to run"),
])
def test_main_job_refuses_bad_arguments(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main_job.main(argv + ["--output", str(tmp_path / "main")])
    assert e.value.code == 2 and message in capsys.readouterr().err
