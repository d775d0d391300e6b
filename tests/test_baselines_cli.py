"""The CLI end to end on real SIRST-V2 images (split ``mini_test``), resume included."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import sirst_copy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET = "sirst_v2_mini_test"
SPLIT = os.path.join(ROOT, "datasets", "sirst_v2", "splits", "mini_test.txt")
pytestmark = pytest.mark.skipif(not os.path.isfile(SPLIT), reason="SIRST-V2 not installed")


def _ids():
    with open(SPLIT) as f:
        return [line.strip() for line in f if line.strip()]


def _cli(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "baselines", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, **kw)


def test_list_shows_methods_and_defaults():
    out = _cli("list")
    assert out.returncode == 0, out.stderr
    for name in ("ipi", "nipps", "ript", "pstnn", "fkrw", "lcm", "mpcm", "wldm", "tophat",
                 "maxmedian", "tllcm"):
        assert f"\n{name} " in "\n" + out.stdout
    assert "patch=50" in out.stdout and "Gao" in out.stdout


def test_run_resumes_after_interruption(tmp_path):
    out_dir = tmp_path / "ipi"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "baselines", "run", "--method", "ipi",
                             "--dataset", DATASET, "--output", str(out_dir), "--no-eval"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    partial = out_dir / "partial"
    deadline = time.time() + 120
    while time.time() < deadline and not (partial.is_dir() and any(
            p.suffix == ".json" for p in partial.iterdir())):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # a hard interruption
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in partial.glob("*.json")}
    ids = _ids()
    assert 1 <= len(finished) < len(ids)
    assert not (out_dir / "results.json").exists()

    res = _cli("run", "--method", "ipi", "--dataset", DATASET, "--output", str(out_dir),
               "--workers", "2", timeout=300)
    assert res.returncode == 0, res.stderr
    # finished images were not redone
    for name, mtime in finished.items():
        assert (partial / name).stat().st_mtime_ns == mtime
    run = json.loads((out_dir / "run.json").read_text())
    assert run["resumed_images"] == len(finished) and run["n_images"] == len(ids)
    assert run["method"] == "ipi" and run["params"]["patch"] == 50 and run["protocol"] == "p1"
    assert run["seconds_per_image_median"] > 0 and "evaluation" in run
    assert "mNoCoAP=" in res.stdout and "Pd=" in res.stdout and "s/image(median)=" in res.stdout
    records = json.loads((out_dir / "results.json").read_text())
    assert {r["image_id"] for r in records} <= set(ids)
    for r in records:
        assert set(r) == {"image_id", "point", "score", "bbox"}
        assert 0 < r["score"] <= 1 and r["point"] == [int(v) for v in r["point"]]
    # an uninterrupted run with one worker writes the same bytes (canonical record order)
    fresh = tmp_path / "fresh"
    res2 = _cli("run", "--method", "ipi", "--dataset", DATASET, "--output", str(fresh),
                "--workers", "1", "--no-eval", "--no-progress", timeout=300)
    assert res2.returncode == 0, res2.stderr
    assert (fresh / "results.json").read_bytes() == (out_dir / "results.json").read_bytes()


def test_save_maps_protocol_flag_and_param_mismatch(tmp_path):
    out_dir = tmp_path / "tophat"
    res = _cli("run", "--method", "tophat", "--dataset", DATASET, "--output", str(out_dir),
               "--save-maps", "--protocol", "p2", "--no-eval", timeout=120)
    assert res.returncode == 0, res.stderr
    ids = _ids()
    for i in ids:
        z = np.load(out_dir / "maps" / f"{i}.npz")
        assert z["map"].dtype == np.float16 and z["map"].ndim == 2 and z["map"].max() <= 1
    records = json.loads((out_dir / "results.json").read_text())
    assert max(r["score"] for r in records) > 1  # P2 tiers
    res = _cli("run", "--method", "tophat", "--dataset", DATASET, "--output", str(out_dir),
               "--param", "size=9", "--no-eval", timeout=120)
    assert res.returncode != 0 and "different" in res.stderr
    # a run made before a parameter existed resumes (the new parameter takes its default)
    run = json.loads((out_dir / "run.json").read_text())
    del run["params"]["size"]
    (out_dir / "run.json").write_text(json.dumps(run))
    res = _cli("run", "--method", "tophat", "--dataset", DATASET, "--output", str(out_dir),
               "--protocol", "p2", "--no-eval", timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads((out_dir / "results.json").read_text()) == records
    res = _cli("run", "--method", "tophat", "--dataset", DATASET, "--output", str(out_dir),
               "--param", "size", "--no-eval", timeout=120)
    assert res.returncode != 0 and "NAME=VALUE" in res.stderr


def test_benchmark_table_with_a_parameter_override(tmp_path):
    """tools/benchmark_classical.py on three real images: one row per method, the override
    reaches the run and is named under the table; a malformed override fails before any run."""
    def bench(*args):
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        return subprocess.run([sys.executable, os.path.join("tools", "benchmark_classical.py"),
                               "--dataset", DATASET, "--output", str(tmp_path), "--workers", "1",
                               "--no-progress", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)

    res = bench("--methods", "tophat,lcm", "--param", "tophat.size=9")
    assert res.returncode == 0, res.stderr
    table = (tmp_path / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| tophat ")
            or line.startswith("| lcm ")]
    assert len(rows) == 2 and "Not the published defaults: tophat size=9" in table
    assert "| ties across / within images |" in table
    for row in rows:  # exact score ties left: across / within images
        cells = [c.strip() for c in row.strip("|").split("|")]
        across, within = (int(v) for v in cells[-1].split(" / "))
        assert len(cells) == 12 and across >= 0 and within >= 0
    assert "CPU: " in res.stdout and "capability" in res.stdout
    assert json.loads((tmp_path / "tophat" / "run.json").read_text())["params"]["size"] == 9
    assert json.loads((tmp_path / "lcm" / "run.json").read_text())["status"] == "done"
    for bad in ("ipi.e_tol=0.1", "tophat.nope=1", "tophat.size"):
        res = bench("--methods", "tophat", "--param", bad)
        assert res.returncode != 0 and ("--param" in res.stderr or "nope" in res.stderr)
        assert "Traceback" not in res.stderr


def test_count_ties_across_and_within_images():
    """Scores are compared as float32, as the metric reads them (0.3 + 1e-9 equals 0.3)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from benchmark_classical import count_ties

    recs = [{"image_id": i, "score": s} for i, s in [
        ("a", 0.99), ("b", 0.99), ("c", 0.99),          # across images: 3
        ("a", 0.5), ("a", 0.5),                         # within one image: 2
        ("b", float(np.float32(0.3)) + 1e-9), ("c", 0.3),  # across (float32): 2
        ("c", 0.1)]]
    assert count_ties(recs) == (5, 2)



def test_a_changed_image_is_recomputed_on_resume(tmp_path):
    """Resume is keyed by the input: replacing one image between two runs recomputes it (and
    only it), and the results equal a fresh run on the new files."""
    import cv2
    from helpers import sirst_copy

    ids = _ids()[:3]
    sirst_copy(tmp_path / "data", os.path.join(ROOT, "datasets", "sirst_v2"), ids, link=False)
    env = {"DETECTRON2_DATASETS": str(tmp_path / "data")}

    def run(out, *extra):
        return subprocess.run([sys.executable, "-m", "baselines", "run", "--method", "tophat",
                               "--dataset", "sirst_v2_s", "--output", str(out), "--no-eval",
                               *extra], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, OMP_NUM_THREADS="1", **env))

    out = tmp_path / "run"
    assert run(out).returncode == 0
    partial = out / "partial"
    mtimes = {p.name: p.stat().st_mtime_ns for p in partial.glob("*.json")}
    image = tmp_path / "data/sirst_v2/mixed" / f"{ids[0]}.png"
    gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    gray[5:8, 5:8] = 255  # a new bright spot: same size, other pixels
    cv2.imwrite(str(image), gray)

    res = run(out)
    assert res.returncode == 0, res.stderr
    assert "2 image(s) reused, 1 recomputed (image or parameters changed), 0 new" in res.stdout
    assert "reused=2" in res.stdout and "recomputed=1" in res.stdout
    for p in partial.glob("*.json"):
        assert (p.stat().st_mtime_ns == mtimes[p.name]) == (p.name != f"{ids[0]}.json")
    assert json.loads((out / "run.json").read_text())["recomputed_images"] == 1
    assert run(tmp_path / "fresh").returncode == 0
    assert (out / "results.json").read_text() == (tmp_path / "fresh/results.json").read_text()


def test_one_number_whatever_the_tool_the_workers_or_the_record_order(tmp_path, sirst_root,
                                                                     monkeypatch, capsys):
    """Three real images: ``baselines run`` with 1 and 2 workers, ``benchmark_classical`` and
    ``eval_detections`` (on the run's results file and on a shuffled copy) give exactly the
    same figures, and the metrics JSON holds them unrounded. (In-process, for speed.)"""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from baselines.__main__ import main as baselines_main
    from deepinfrared_d2.data import register_sirst_v2

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import benchmark_classical
    import eval_detections

    root = sirst_copy(tmp_path, sirst_root, _ids()[:3])
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    dataset = "sirst_v2_s"
    assert dataset in register_sirst_v2(str(root))
    try:
        _same_figures_everywhere(tmp_path, dataset, monkeypatch, baselines_main,
                                 benchmark_classical, eval_detections)
    finally:  # the temporary split must not outlive this test in the catalogs
        DatasetCatalog.remove(dataset)
        MetadataCatalog.remove(dataset)
    capsys.readouterr()


def _same_figures_everywhere(tmp_path, dataset, monkeypatch, baselines_main,
                             benchmark_classical, eval_detections):
    figures = {}
    for workers in (1, 2):
        out = tmp_path / f"run{workers}"
        assert baselines_main(["run", "--method", "tophat", "--dataset", dataset, "--output",
                               str(out), "--workers", str(workers), "--no-progress"]) == 0
        figures[workers] = json.loads((out / "run.json").read_text())["evaluation"]
    assert figures[1] == figures[2]
    assert (tmp_path / "run1" / "results.json").read_bytes() == \
        (tmp_path / "run2" / "results.json").read_bytes()
    ref = figures[1]
    noco = ref["noco"]
    assert any(v != round(v, 3) for v in noco.values())  # unrounded (float32 APs)

    monkeypatch.setattr(sys, "argv", ["benchmark_classical.py", "--dataset", dataset,
                                      "--methods", "tophat", "--workers", "1", "--output",
                                      str(tmp_path / "bench"), "--no-progress"])
    assert benchmark_classical.main() == 0
    row = json.loads((tmp_path / "bench" / "rows.json").read_text())[0]
    assert (row["mnocoap"], row["pd"], row["fa"]) == (
        noco["mNoCoAP"], ref["irstd"]["Pd"], ref["irstd"]["Fa_per_image"])

    records = json.loads((tmp_path / "run1" / "results.json").read_text())
    shuffled = tmp_path / "shuffled.json"
    order = np.random.default_rng(0).permutation(len(records))
    assert order.tolist() != sorted(order.tolist())
    shuffled.write_text(json.dumps([records[i] for i in order]))
    for results in (tmp_path / "run1" / "results.json", shuffled):
        assert eval_detections.main(["--dataset", dataset, "--results", str(results),
                                     "--output", str(tmp_path / "metrics.json")]) == 0
        metrics = json.loads((tmp_path / "metrics.json").read_text())
        assert {k: metrics[k] for k in ref} == ref
