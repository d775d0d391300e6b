"""The CLI end to end on real SIRST-V2 images (split ``mini_test``), resume included."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

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

    res = bench("--methods", "tophat,lcm", "--param", "tophat.size=9", "--tie-orders", "3")
    assert res.returncode == 0, res.stderr
    table = (tmp_path / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| tophat ")
            or line.startswith("| lcm ")]
    assert len(rows) == 2 and "Not the published defaults: tophat size=9" in table
    assert "| P1, 3 random tie orders |" in table
    for row in rows:  # min-max of mNoCoAP over the tie orders
        cells = [c.strip() for c in row.strip("|").split("|")]
        lo, hi = (float(v) for v in cells[-1].split("–"))
        assert 0.0 <= lo <= hi <= 1.0 and len(cells) == 10
    assert json.loads((tmp_path / "tophat" / "run.json").read_text())["params"]["size"] == 9
    assert json.loads((tmp_path / "lcm" / "run.json").read_text())["status"] == "done"
    for bad in ("ipi.e_tol=0.1", "tophat.nope=1", "tophat.size"):
        res = bench("--methods", "tophat", "--param", bad)
        assert res.returncode != 0 and ("--param" in res.stderr or "nope" in res.stderr)
        assert "Traceback" not in res.stderr


def test_break_ties_keeps_the_order_of_distinct_scores():
    """The tie-order column's helper: distinct (float32) scores keep their order, ties
    (0.3 + 1e-9 equals 0.3 in float32, as the metric reads scores) are ordered at random."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from benchmark_classical import break_ties

    scores = [1.0, 0.5, 1.0, 0.25, 0.5, 1.0, np.float32(0.3) + 1e-9, 0.3]
    recs = [{"image_id": str(i), "score": float(s)} for i, s in enumerate(scores)]
    old32 = np.array(scores, np.float32)
    orders = set()
    for seed in range(20):
        out = break_ties(recs, np.random.default_rng(seed))
        new = np.array([r["score"] for r in out])
        assert len(np.unique(new)) == len(recs)  # no tie left
        above_before = old32[:, None] > old32[None, :]
        assert np.all(new[:, None] > new[None, :], where=above_before)  # order kept
        assert [r["image_id"] for r in out] == [r["image_id"] for r in recs]
        orders.add(tuple(np.argsort(-new)))
    assert len(orders) > 1  # ties really are reordered



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
