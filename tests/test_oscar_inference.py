"""OSCAR inference on real SIRST-V2 images returns Detectron2 instances in original pixels."""
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from oscar import add_oscar_config


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one intra-op thread (OpenMP spin-waiting is slow on shared CPUs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_cfg(**overrides):
    cfg = get_cfg()
    add_oscar_config(cfg)
    cfg.merge_from_file("configs/OSCAR/oscar_R18_FPN_P2_128_1x.yaml")
    cfg.MODEL.DEVICE = "cpu"
    # a smaller keep-ratio scale keeps the test fast while still rescaling the boxes
    cfg.INPUT.KEEP_RATIO_SCALE = (500, 300)
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return cfg


@pytest.fixture(scope="module")
def records():
    try:
        return DatasetCatalog.get("sirst_v2_mini_test")
    except Exception as e:  # pragma: no cover - dataset missing
        pytest.skip(f"SIRST-V2 not available: {e}")


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
