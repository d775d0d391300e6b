"""OSCAR inference on real SIRST-V2 images returns Detectron2 instances in original pixels."""
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from helpers import oscar_cfg

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.data.mapper import NoCoDatasetMapper

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_cfg(**overrides):
    # a smaller keep-ratio scale keeps the test fast while still rescaling the boxes
    return oscar_cfg("oscar_R18_FPN_P2_128_1x",
                     **{"INPUT.KEEP_RATIO_SCALE": "(500, 300)", **overrides})


@pytest.fixture(scope="module")
def records():
    return DatasetCatalog.get("sirst_v2_mini_test")


def check(instances, height, width, max_det):
    assert instances.image_size == (height, width)
    assert set(instances.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
    assert 0 < len(instances) <= max_det
    boxes = instances.pred_boxes.tensor
    assert boxes.dtype == torch.float32
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= width + 1e-3).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= height + 1e-3).all()
    # (x2 >= x1 is not enforced: like the reference, a + s_r * delta is only clipped)
    scores = instances.scores
    assert ((scores >= 0) & (scores <= 1)).all()
    assert torch.equal(scores, scores.sort(descending=True).values)
    assert (instances.pred_classes == 0).all()


def test_inference_returns_original_coordinates(records):
    torch.manual_seed(0)
    cfg = make_cfg()
    model = build_model(cfg).eval()
    mapper = NoCoDatasetMapper(cfg, is_train=False)
    inputs = [mapper(r) for r in records[:2]]
    assert any(tuple(d["image"].shape[1:]) != (d["height"], d["width"]) for d in inputs)
    with torch.no_grad():
        outputs = model(inputs)
    assert len(outputs) == 2
    for rec, out in zip(records, outputs):
        # an untrained head gives p_r ~ 0.5 everywhere: many candidates, capped at 100
        check(out["instances"], rec["height"], rec["width"], cfg.MODEL.OSCAR.TEST_MAX_PER_IMAGE)


def test_max_detections_and_native_resolution(records):
    torch.manual_seed(0)
    cfg = make_cfg(**{"MODEL.OSCAR.TEST_MAX_PER_IMAGE": "7", "INPUT.RESIZE_MODE_TEST": "none"})
    model = build_model(cfg).eval()
    rec = records[0]
    d = NoCoDatasetMapper(cfg, is_train=False)(rec)
    assert tuple(d["image"].shape[1:]) == (rec["height"], rec["width"])
    with torch.no_grad():
        out = model([d])[0]["instances"]
    check(out, rec["height"], rec["width"], 7)
    assert len(out) == 7
