"""tools/visualize_data.py on real SIRST-V2 images, with and without a results file."""
import json
import os
import subprocess
import sys

import cv2
from detectron2.data import DatasetCatalog
from helpers import ROOT

DATASET = "sirst_v2_mini_test"


def run(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools/visualize_data.py"),
                           "--dataset", DATASET, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_pictures_with_gt_noco_and_detections(tmp_path):
    records = DatasetCatalog.get(DATASET)
    with_target = [r for r in records if r["annotations"]]
    rec = with_target[0]
    x1, y1, x2, y2 = rec["annotations"][0]["bbox"]
    results = tmp_path / "dets.json"
    results.write_text(json.dumps([{"image_id": rec["image_id"], "score": 0.9,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1]}]))
    r = run("--output-dir", str(tmp_path / "vis"), "--results", str(results), "--num", "0")
    assert r.returncode == 0, r.stderr
    for rr in records:
        pic = cv2.imread(str(tmp_path / "vis" / f"{rr['image_id']}.png"))
        assert pic is not None
        if rr["annotations"]:  # the whole image, then a strip of magnified target crops
            assert pic.shape[0] > min(rr["height"], 1024)

    # the detection is drawn in pure red on the picture of its image, and only there
    r = run("--output-dir", str(tmp_path / "plain"), "--ids", rec["image_id"])
    assert r.returncode == 0, r.stderr

    def red(folder):
        pic = cv2.imread(str(tmp_path / folder / f"{rec['image_id']}.png"))
        return int(((pic[..., 2] == 255) & (pic[..., 1] == 0) & (pic[..., 0] == 0)).sum())

    assert red("vis") > 0 and red("plain") == 0


def test_bad_inputs_exit_2(tmp_path):
    r = run("--output-dir", str(tmp_path), "--ids", "no_such_image")
    assert r.returncode == 2 and "no_such_image" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": "Misc_70", "score": NaN, "point": [1, 2]}]')
    r = run("--output-dir", str(tmp_path), "--results", str(bad))
    assert r.returncode == 2 and "bad.json" in r.stderr


def test_truncated_png_is_named_and_skipped_and_unknown_ids_are_errors(tmp_path, sirst_root):
    from helpers import sirst_copy

    ids = [r["image_id"] for r in DatasetCatalog.get(DATASET)][:2]
    root = sirst_copy(tmp_path / "data", sirst_root, ids)
    png = root / "mixed" / f"{ids[0]}.png"
    data = png.read_bytes()
    png.unlink()
    png.write_bytes(data[: len(data) // 2])  # the header survives: the catalog still loads it
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path / "data"))

    def vis(*args):
        return subprocess.run([sys.executable, os.path.join(ROOT, "tools/visualize_data.py"),
                               "--dataset", "sirst_v2_s", "--output-dir", str(tmp_path / "vis"),
                               *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                              env=env)

    r = vis()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{ids[0]}.png: cannot be decoded" in r.stderr
    assert cv2.imread(str(tmp_path / "vis" / f"{ids[1]}.png")) is not None

    results = tmp_path / "dets.json"
    results.write_text(json.dumps([{"image_id": ids[1], "score": 0.9, "point": [1, 2]},
                                   {"image_id": "Misc_elsewhere", "score": 0.9, "point": [1, 2]}]))
    r = vis("--results", str(results))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "dets.json: record 1: image id 'Misc_elsewhere' is not in dataset" in r.stderr
