"""tools/demo.py on real SIRST-V2 images with a real (briefly trained) OSCAR checkpoint."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from helpers import ROOT, oscar_cfg

from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from deepinfrared_d2.deploy.compare import matched_differences
from deepinfrared_d2.engine import SIRSTCheckpointer, SIRSTTrainer
from deepinfrared_d2.engine.trainer import with_test_precision
from deepinfrared_d2.evaluation import load_results_file

sys.path.insert(0, os.path.join(ROOT, "tools"))
from demo import image_ids  # noqa: E402

IDS = ("Misc_70", "Misc_96")
CONFIG = os.path.join(ROOT, "projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of the CPU-recipe OSCAR after 3 training iterations on mini_trainval."""
    out = tmp_path_factory.mktemp("demo-train")
    torch.manual_seed(0)
    cfg = oscar_cfg(**{"DATASETS.TRAIN": "('sirst_v2_mini_trainval',)", "DATASETS.TEST": "()",
                       "SOLVER.MAX_ITER": "3", "SOLVER.IMS_PER_BATCH": "2",
                       "INPUT.TARGET_CROP.SIZE": "(128, 128)", "DATALOADER.NUM_WORKERS": "0",
                       "OUTPUT_DIR": str(out)})
    trainer = SIRSTTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return str(out / "model_final.pth")


def run_demo(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools/demo.py"),
                           "--config-file", CONFIG, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)


def test_demo_writes_pictures_and_an_evaluable_results_file(tmp_path, sirst_root, checkpoint):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in IDS:
        shutil.copy(os.path.join(sirst_root, "mixed", f"{i}.png"), inputs / f"{i}.png")
    (inputs / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    r = run_demo("--input", str(inputs), "--output", str(out), "--top-k", "3",
                 "MODEL.WEIGHTS", checkpoint, "MODEL.OSCAR.TEST_MAX_PER_IMAGE", "20")
    # the unreadable file is named, skipped, and makes the exit code 2; the others are done
    assert r.returncode == 2, r.stderr
    assert "broken.png" in r.stderr
    records = load_results_file(str(out / "results.json"))
    assert {rec["image_id"] for rec in records} == set(IDS)

    # the records are exactly the model's detections on each image, in original pixels
    cfg = oscar_cfg(**{"MODEL.WEIGHTS": checkpoint, "MODEL.OSCAR.TEST_MAX_PER_IMAGE": "20"})
    model = SIRSTTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(checkpoint)
    model.eval()
    mapper = NoCoDatasetMapper(cfg, is_train=False)
    for i in IDS:
        img = cv2.imread(str(inputs / f"{i}.png"))
        pic = cv2.imread(str(out / f"{i}.png"))
        assert pic is not None and pic.shape[1] >= img.shape[1]
        mine = [rec for rec in records if rec["image_id"] == i]
        with torch.no_grad():  # at the precision the demo chose (MODEL.CPU_AMP_DTYPE auto)
            inputs_i = mapper({"file_name": str(inputs / f"{i}.png"), "image_id": i,
                               "height": img.shape[0], "width": img.shape[1]})
            inst = with_test_precision(cfg, model)([inputs_i])[0]["instances"]
        assert len(mine) == len(inst) > 0
        assert [rec["score"] for rec in mine] == sorted(inst.scores.float().tolist(), reverse=True)
        xywh = np.array([rec["bbox"] for rec in mine])
        assert (xywh[:, 0] >= 0).all() and (xywh[:, 0] + xywh[:, 2] <= img.shape[1] + 1e-3).all()


def test_demo_threshold_and_bad_input(tmp_path, sirst_root, checkpoint):
    image = os.path.join(sirst_root, "mixed", f"{IDS[0]}.png")
    r = run_demo("--input", image, "--output", str(tmp_path / "o"), "--no-pictures",
                 "--confidence-threshold", "0.9", "MODEL.WEIGHTS", checkpoint)
    assert r.returncode == 0, r.stderr
    records = json.loads((tmp_path / "o" / "results.json").read_text())
    assert all(rec["score"] >= 0.9 for rec in records)
    assert not list((tmp_path / "o").glob("*.png"))

    r = run_demo("--input", image, "--output", str(tmp_path / "p"))  # no MODEL.WEIGHTS
    assert r.returncode == 2 and "MODEL.WEIGHTS" in r.stderr
    r = run_demo("--input", str(tmp_path / "nothing*.png"), "--output", str(tmp_path / "p"),
                 "MODEL.WEIGHTS", checkpoint)
    assert r.returncode == 2 and "nothing*.png" in r.stderr

    # a checkpoint that leaves weights at their random init is refused, naming a few
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("head.refine")}},
               tmp_path / "partial.pth")
    r = run_demo("--input", image, "--output", str(tmp_path / "q"),
                 "MODEL.WEIGHTS", str(tmp_path / "partial.pth"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "partial.pth leaves 26 of 172 model weights unloaded (e.g. head.refine" in r.stderr


def test_demo_runs_the_exported_onnx_model(tmp_path, sirst_root, checkpoint):
    images = [os.path.join(sirst_root, "mixed", f"{i}.png") for i in IDS]
    onnx_file = tmp_path / "oscar.onnx"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/export_model.py"),
                        "--config-file", CONFIG, "--output", str(onnx_file), "--check",
                        images[0], "--check", images[1], "--int8", str(tmp_path / "int8.onnx"),
                        "--calibration-dataset", "sirst_v2_mini_trainval",
                        "--calibration-images", "3", "MODEL.WEIGHTS", checkpoint],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "max |ONNX Runtime - PyTorch| over 2 image(s)" in r.stdout
    assert "int8, calibrated on 3 images" in r.stdout
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/demo.py"), "--onnx",
                        str(tmp_path / "int8.onnx"), "--input", *images, "--output",
                        str(tmp_path / "int8")],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {rec["image_id"] for rec in load_results_file(str(tmp_path / "int8/results.json"))} \
        == set(IDS)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/demo.py"), "--onnx",
                        str(onnx_file), "--input", *images, "--output", str(out)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    records = load_results_file(str(out / "results.json"))
    assert (out / f"{IDS[0]}.png").is_file()

    # the same detections as the float32 PyTorch model (the exported graph is float32)
    cfg = oscar_cfg(**{"MODEL.WEIGHTS": checkpoint})
    model = SIRSTTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(checkpoint)
    model.eval()
    mapper = NoCoDatasetMapper(cfg, is_train=False)
    for i, path in zip(IDS, images):
        mine = [rec for rec in records if rec["image_id"] == i]
        h, w = cv2.imread(path).shape[:2]
        with torch.no_grad():
            inst = model([mapper({"file_name": path, "image_id": i, "height": h,
                                  "width": w})])[0]["instances"]
        assert len(mine) == len(inst) > 0
        xywh = np.array([rec["bbox"] for rec in mine])
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        # near-tied scores (a briefly trained model has many) may come out in either order
        box_diff, score_diff = matched_differences(
            xyxy, np.array([rec["score"] for rec in mine]), inst.pred_boxes.tensor.numpy(),
            inst.scores.numpy())
        assert box_diff <= 1e-3 and score_diff <= 1e-5

    # a missing ONNX file, or both back-ends at once, are clear user errors
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/demo.py"), "--onnx",
                        str(tmp_path / "missing.onnx"), "--input", *images, "--output", str(out)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 2 and "missing.onnx" in r.stderr
    r = run_demo("--onnx", str(onnx_file), "--input", images[0], "--output", str(out))
    assert r.returncode == 2 and "either --config-file" in r.stderr

@pytest.fixture(scope="module")
def fresh_checkpoint(tmp_path_factory):
    """A freshly initialised CPU-recipe OSCAR, saved with the checkpointer (no training)."""
    out = tmp_path_factory.mktemp("demo-fresh")
    torch.manual_seed(0)
    SIRSTCheckpointer(SIRSTTrainer.build_model(oscar_cfg()), str(out)).save("fresh")
    return str(out / "fresh.pth")


def test_image_ids_are_unique_and_deterministic():
    assert image_ids(["/d/Misc_1.png", "/e/Misc_2.png"]) == ["Misc_1", "Misc_2"]
    assert image_ids(["/d/a/normal.png", "/d/b/normal.png", "/d/c/other.png"]) == [
        "a/normal", "b/normal", "other"]
    assert image_ids(["/x/a/n.png", "/x/b/n.png", "/y/a/n.png"]) == ["x/a/n", "x/b/n", "y/a/n"]
    assert image_ids(["/d/n.png", "/d/n.jpg"]) == ["n.png", "n.jpg"]


def test_shared_file_names_and_too_large_images(tmp_path, sirst_root, fresh_checkpoint):
    for sub, i in zip("ab", IDS):
        (tmp_path / sub).mkdir()
        shutil.copy(os.path.join(sirst_root, "mixed", f"{i}.png"), tmp_path / sub / "normal.png")
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((600, 600), np.uint8))
    out = tmp_path / "out"
    r = run_demo("--input", str(tmp_path / "a/normal.png"), str(tmp_path / "b/normal.png"),
                 str(tmp_path / "big.png"), "--output", str(out), "--max-pixels", "200000",
                 "MODEL.WEIGHTS", fresh_checkpoint, "MODEL.OSCAR.TEST_MAX_PER_IMAGE", "10")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "big.png: 600x600 = 360000 pixels is more than --max-pixels 200000" in r.stderr
    records = json.loads((out / "results.json").read_text())
    by_id = {}
    for rec in records:
        by_id.setdefault(rec["image_id"], []).append(rec)
    assert sorted(by_id) == ["a/normal", "b/normal"] and all(len(v) == 10 for v in by_id.values())
    assert by_id["a/normal"] != by_id["b/normal"]
    for sub, i in zip("ab", IDS):  # one picture per input, each of its own image
        pic = cv2.imread(str(out / sub / "normal.png"))
        img = cv2.imread(os.path.join(sirst_root, "mixed", f"{i}.png"))
        assert pic is not None and pic.shape[1] >= img.shape[1]


def test_a_killed_demo_keeps_the_finished_images_records(tmp_path, sirst_root, fresh_checkpoint):
    ids = [f[:-4] for f in sorted(os.listdir(os.path.join(sirst_root, "mixed")))][:8]
    folder = tmp_path / "in"
    folder.mkdir()
    for i in ids:
        os.symlink(os.path.join(sirst_root, "mixed", f"{i}.png"), folder / f"{i}.png")
    out = tmp_path / "out"
    args = [sys.executable, os.path.join(ROOT, "tools/demo.py"), "--config-file", CONFIG,
            "--input", str(folder), "--output", str(out), "--no-pictures",
            "MODEL.WEIGHTS", fresh_checkpoint, "MODEL.OSCAR.TEST_MAX_PER_IMAGE", "10"]
    p = subprocess.Popen(args, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    lines = out / "detections.jsonl"
    deadline = time.time() + 300
    while p.poll() is None and time.time() < deadline and not (
            lines.exists() and lines.read_text().count("\n") >= 1):
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (out / "results.json").exists()
    kept = [json.loads(line) for line in lines.read_text().splitlines(keepends=True)
            if line.endswith("\n")]
    assert 1 <= len(kept) < len(ids)
    assert [k["image_id"] for k in kept] == ids[:len(kept)]

    r = run_demo("--input", str(folder), "--output", str(out), "--no-pictures",
                 "MODEL.WEIGHTS", fresh_checkpoint, "MODEL.OSCAR.TEST_MAX_PER_IMAGE", "10")
    assert r.returncode == 0, r.stderr
    records = load_results_file(str(out / "results.json"))  # valid boxes, even untrained
    assert {rec["image_id"] for rec in records} == set(ids)
    for k in kept:  # what was on disk at the kill is what a full run computes
        assert k["records"] == [rec for rec in records if rec["image_id"] == k["image_id"]]
