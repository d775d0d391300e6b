"""NoCoEvaluator: inside Detectron2's inference_on_dataset with a real (tiny, untrained)
Detectron2 model, across 2 processes, and through the results-file CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.modeling import build_model

from deepinfrared_d2.engine import launch
from deepinfrared_d2.evaluation import NoCoEvaluator, centroids_from_boxes, evaluate_nocoap, pd_fa
from deepinfrared_d2.evaluation.ground_truth import ground_truth_from_maps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_detections  # noqa: E402

DATASET = "sirst_v2_mini_test"


def tiny_retinanet_cfg():
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "RetinaNet"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.NAME = "build_retinanet_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.RETINANET.NUM_CLASSES = 1
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = 0.0  # keep every detection of the untrained model
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[8], [16], [32], [64], [128]]
    cfg.INPUT.MIN_SIZE_TEST = 160
    cfg.INPUT.MAX_SIZE_TEST = 200
    cfg.DATASETS.TEST = (DATASET,)
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def test_evaluator_in_inference_on_dataset_with_a_real_detectron2_model(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_retinanet_cfg()
    model = build_model(cfg).eval()
    loader = build_detection_test_loader(cfg, DATASET)
    evaluator = NoCoEvaluator(DATASET, output_dir=str(tmp_path))
    results = inference_on_dataset(model, loader, evaluator)

    # The same model outputs, evaluated by hand through the metric functions.
    records = DatasetCatalog.get(DATASET)
    outputs = {}
    with torch.no_grad():
        for batch in loader:
            for inp, out in zip(batch, model(batch)):
                inst = out["instances"]
                assert inst.image_size == (inp["height"], inp["width"])  # original pixels
                outputs[inp["image_id"]] = (inst.pred_boxes.tensor.numpy(), inst.scores.numpy())
    assert len(outputs) == len(records) == 4
    assert 4 < sum(len(s) for _, s in outputs.values()) <= 100 * len(records)
    gt = evaluator.ground_truth()
    cents = [centroids_from_boxes(*outputs[i]) for i in gt.image_ids]
    assert results["noco"] == evaluate_nocoap(cents, gt)
    assert results["irstd"] == pd_fa(cents, gt, 0.5)
    assert set(results) == {"noco", "irstd", "bbox"}
    assert set(results["bbox"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}

    # The saved predictions are a results file: the CLI gives back the same figures.
    out_json = tmp_path / "cli.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools/eval_detections.py"),
                           "--dataset",
                           DATASET, "--results", str(tmp_path / "predictions.json"), "--output",
                           str(out_json)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "mNoCoAP" in proc.stdout
    cli = json.loads(out_json.read_text())
    assert cli["noco"]["mNoCoAP"] == pytest.approx(results["noco"]["mNoCoAP"], abs=1e-6)
    assert cli["irstd"] == pytest.approx(results["irstd"])


def _fill(ev, rank, world_size):
    """Rank ``rank`` adds its share of hand-made detections: each GT box, then a false alarm."""
    for k, r in enumerate(DatasetCatalog.get(DATASET)):
        if k % world_size == rank:
            x1, y1, x2, y2 = r["annotations"][0]["bbox"]
            ev.add(r["image_id"], [0.9 - 0.1 * k, 0.2], boxes=[[x1, y1, x2, y2], [0, 0, 4, 4]])
    return ev


def _gather_worker(tmp_dir):
    """Each of 2 ranks evaluates half of the images; rank 0 writes what evaluate() returned."""
    from detectron2.utils import comm

    import deepinfrared_d2  # noqa: F401  (fresh process: register datasets)

    res = _fill(NoCoEvaluator(DATASET), comm.get_rank(), comm.get_world_size()).evaluate()
    with open(os.path.join(tmp_dir, f"rank{comm.get_rank()}.json"), "w") as f:
        json.dump(res, f)


def test_predictions_are_gathered_across_two_processes(tmp_path):
    launch(_gather_worker, 2, dist_url="auto", args=(str(tmp_path),))
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    assert json.loads((tmp_path / "rank1.json").read_text()) == {}  # only the main process reports
    single = _fill(NoCoEvaluator(DATASET, distributed=False), 0, 1).evaluate()
    assert rank0 == json.loads(json.dumps(single))
    # Every target is found before any false alarm: AP = 1 at the low thresholds.
    assert rank0["noco"]["NoCoAP10"] == rank0["noco"]["NoCoAP50"] == 1.0
    assert rank0["irstd"]["Pd"] == 1.0 and rank0["irstd"]["Fa_per_image"] == 0.0


def test_pd_fa_by_hand():
    gt = ground_truth_from_maps(["a", "b"], [(100, 100), (50, 50)],
                                [[(10, 10, 14, 14), (40, 40, 42, 42)], []])
    # Image a: target centres (12, 12) and (41, 41).
    a = np.array([[12.5, 14.0, 0.9],   # 2.06 px from (12, 12): match
                  [12.0, 12.0, 0.8],   # same target, already taken -> false alarm
                  [44.0, 41.0, 0.7],   # 3.0 px: not < 3 -> false alarm
                  [41.0, 41.0, 0.4]],  # below the score threshold: ignored
                 dtype=np.float32)
    b = np.array([[5, 5, 0.99]], dtype=np.float32)  # background image: false alarm
    res = pd_fa([a, b], gt, score_threshold=0.5)
    assert res["Pd"] == 0.5
    assert res["Fa_per_image"] == 3 / 2
    assert res["Fa_per_MP"] == pytest.approx(3 / ((100 * 100 + 50 * 50) / 1e6))
    assert pd_fa([a, b], gt, score_threshold=0.3)["Pd"] == 1.0


def _rec(score=0.5, image_id="Misc_70", **kw):
    return {"image_id": image_id, "score": score, **(kw or {"point": [1, 2]})}


@pytest.mark.parametrize("records,message", [
    ([{"image_id": "Misc_70", "bbox": [1, 2, 3, 4]}], "record 0: missing 'score'"),
    ([_rec(float("nan"))], "record 0: score nan"),
    ([_rec(image_id="nope")], "record 0: image id 'nope' is not in"),
    ([_rec(), _rec(), _rec(image_id="nope")], "record 2: image id 'nope' is not in"),
    ([_rec(), _rec(1e39)], "record 1: score 1e+39 is not a"),
    ([_rec(bbox=[3e38, 2, 3e38, 4])],
     "record 0: detection centre (inf, 4.0) with score 0.5 is not a finite point"),
    ([_rec(point=[1])], "record 0: 'point' must be 2 finite"),
    ({"image_id": "Misc_70"}, "expected a JSON list"),
    ([_rec(point=[1e6, 2])],
     "record 0: detection centre (1000000.0, 2.0) with score 0.5 is not a finite point inside"),
])
def test_cli_rejects_bad_results_files_with_exit_code_2(tmp_path, capsys, records, message):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(records))
    assert eval_detections.main(["--dataset", DATASET, "--results", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error:")
