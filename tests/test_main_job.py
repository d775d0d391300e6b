"""The main job (tools/main.py) end to end on a small real split, and its resume."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import main as main_job  # noqa: E402


def test_main_job_writes_metrics_detections_and_pictures(tmp_path, capsys):
    out = tmp_path / "main"
    assert main_job.main(["--dataset", "sirst_v2_mini_test", "--output", str(out),
                          "--pictures", "3"]) == 0
    printed = capsys.readouterr().out
    assert "mNoCoAP" in printed and "Pd" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "tophat" and 0.0 <= metrics["noco"]["mNoCoAP"] <= 1.0
    run = json.loads((out / "tophat" / "run.json").read_text())
    assert run["n_images"] == 4 and run["resumed_images"] == 0
    assert len(os.listdir(out / "pictures")) == 3  # mini_test has 4 images, all with a target
    # A second run resumes: every image is already done, the metrics are identical.
    assert main_job.main(["--dataset", "sirst_v2_mini_test", "--output", str(out),
                          "--pictures", "0"]) == 0
    assert json.loads((out / "tophat" / "run.json").read_text())["resumed_images"] == 4
    assert json.loads((out / "metrics.json").read_text()) == metrics
