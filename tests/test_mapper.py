"""NoCoDatasetMapper and the SIRST transforms on real SIRST-V2 images (spec 8.1, 2.3)."""
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode
from helpers import ROOT

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.data import read_image_bgr
from deepinfrared_d2.data.mapper import NoCoDatasetMapper, _clip_and_filter
from deepinfrared_d2.data.transforms import (
    GammaLUTTransform,
    RandomGammaCorrection,
    TargetCentredCrop,
    gamma_table,
    keep_ratio_size,
)
from deepinfrared_d2.evaluation import noco_map


def make_cfg(**overrides):
    cfg = get_cfg(os.path.join(ROOT, "configs", "Base-SIRST-V2.yaml"))  # RGB input
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return cfg


@pytest.fixture(scope="module")
def records():
    return DatasetCatalog.get("sirst_v2_trainval_full")


def first(records, size=None, with_targets=True):
    for r in records:
        if (size is None or (r["width"], r["height"]) == size) and (
                with_targets is None or bool(r["annotations"]) == with_targets):
            return r
    pytest.fail(f"SIRST-V2 has no record of size {size} (targets: {with_targets})")


def image_hwc_bgr(d):
    """The mapper's (3, H, W) RGB tensor back to an (H, W, 3) BGR uint8 array."""
    return d["image"].permute(1, 2, 0).numpy()[:, :, ::-1]


@pytest.mark.parametrize("wh, expected", [((320, 240), (800, 600)), ((640, 512), (750, 600)),
                                          ((1280, 1024), (750, 600)), ((1280, 720), (1000, 563)),
                                          ((1918, 1080), (1000, 563))])
def test_keep_ratio_rule(wh, expected):
    new_h, new_w = keep_ratio_size(wh[1], wh[0], 1000, 600)
    assert (new_w, new_h) == expected


@pytest.mark.parametrize("wh, expected", [((320, 240), (800, 600)), ((640, 512), (750, 600)),
                                          ((1280, 1024), (750, 600))])
def test_test_mode_resizes_real_images(records, wh, expected):
    rec = first(records, wh, with_targets=None)
    d = NoCoDatasetMapper(make_cfg(), is_train=False)(rec)
    assert tuple(d["image"].shape) == (3, expected[1], expected[0])
    assert d["image"].dtype == torch.uint8
    assert (d["height"], d["width"]) == (wh[1], wh[0])  # original size kept for rescaling
    assert "instances" not in d and "noco_map" not in d and "annotations" not in d
    bgr = cv2.resize(read_image_bgr(rec["file_name"]), expected, interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(image_hwc_bgr(d), bgr)  # OpenCV bilinear, RGB channel order


def test_test_mode_native_resolution(records):
    rec = first(records, (640, 512), with_targets=False)
    d = NoCoDatasetMapper(make_cfg(**{"INPUT.RESIZE_MODE_TEST": "none"}), is_train=False)(rec)
    assert tuple(d["image"].shape) == (3, 512, 640)


@pytest.mark.parametrize("wh", [(640, 512), (320, 240)])
def test_train_mode_boxes_and_noco_target(records, wh):
    rec = first(records, wh)
    cfg = make_cfg(**{"INPUT.FLIP_PROB": "0.0"})
    d = NoCoDatasetMapper(cfg, is_train=True)(rec)
    h, w = d["image"].shape[1:]
    new_h, new_w = keep_ratio_size(wh[1], wh[0], 1000, 600)
    assert (h, w) == (new_h, new_w)
    scale = np.array([new_w / wh[0], new_h / wh[1]] * 2, dtype=np.float32)
    boxes = np.array([a["bbox"] for a in rec["annotations"]], dtype=np.float32) * scale
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, new_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, new_h)
    assert np.array_equal(d["instances"].gt_boxes.tensor.numpy(), boxes)
    assert d["instances"].gt_classes.tolist() == [0] * len(boxes)
    assert d["noco_map"].dtype == torch.float32 and tuple(d["noco_map"].shape) == (h, w)
    expected = noco_map(image_hwc_bgr(d), boxes).astype(np.float32)
    assert np.array_equal(d["noco_map"].numpy(), expected)
    assert d["noco_map"].max() > 0.5


def test_flip_moves_boxes_and_noco(records):
    rec = first(records, (640, 512))
    d0 = NoCoDatasetMapper(make_cfg(**{"INPUT.FLIP_PROB": "0.0"}), is_train=True)(rec)
    d1 = NoCoDatasetMapper(make_cfg(**{"INPUT.FLIP_PROB": "1.0"}), is_train=True)(rec)
    w = d0["image"].shape[2]
    b0, b1 = d0["instances"].gt_boxes.tensor, d1["instances"].gt_boxes.tensor
    assert torch.equal(b1[:, 0], w - b0[:, 2]) and torch.equal(b1[:, 2], w - b0[:, 0])
    assert torch.equal(d1["image"], d0["image"].flip(2))
    expected = noco_map(image_hwc_bgr(d1), b1.numpy()).astype(np.float32)
    assert np.array_equal(d1["noco_map"].numpy(), expected)


def test_crop_mode_keeps_targets_at_native_resolution(records):
    cfg = make_cfg(**{"INPUT.RESIZE_MODE_TRAIN": "none", "INPUT.TARGET_CROP.ENABLED": "True",
                      "INPUT.TARGET_CROP.SIZE": "(128, 160)",
                      "INPUT.TARGET_CROP.TARGET_PROB": "1.0"})
    mapper = NoCoDatasetMapper(cfg, is_train=True)
    with_targets = [r for r in records if r["annotations"]][:6]
    np.random.seed(0)
    for rec in with_targets:
        d = mapper(rec)
        h, w = d["image"].shape[1:]
        assert (h, w) == (min(128, rec["height"]), min(160, rec["width"]))
        boxes = d["instances"].gt_boxes.tensor
        assert len(boxes) >= 1
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all()
        # boxes are shifted, not resized: every kept box has an original box of the same size
        sizes = {tuple(b) for b in (np.array([a["bbox"] for a in rec["annotations"]])[:, 2:]
                                    - np.array([a["bbox"] for a in rec["annotations"]])[:, :2])}
        assert any(tuple((b[2:] - b[:2]).tolist()) in sizes for b in boxes)
        expected = noco_map(image_hwc_bgr(d), boxes.numpy()).astype(np.float32)
        assert np.array_equal(d["noco_map"].numpy(), expected)


def test_crop_mode_background_crops(records):
    cfg = make_cfg(**{"INPUT.RESIZE_MODE_TRAIN": "none", "INPUT.TARGET_CROP.ENABLED": "True",
                      "INPUT.TARGET_CROP.TARGET_PROB": "0.0"})
    rec = first(records, (640, 512), with_targets=False)
    d = NoCoDatasetMapper(cfg, is_train=True)(rec)
    assert tuple(d["image"].shape) == (3, 256, 256)
    assert len(d["instances"]) == 0 and float(d["noco_map"].abs().sum()) == 0


def test_target_centred_crop_contains_the_box():
    crop = TargetCentredCrop((32, 32), target_prob=1.0)
    image = np.zeros((200, 300, 3), np.uint8)
    boxes = np.array([[250.0, 10.0, 260.5, 17.0]], np.float32)
    np.random.seed(1)
    for _ in range(50):
        t = crop.get_transform(image, boxes)
        assert t.x0 <= 250 and t.x0 + 32 >= 260.5 and t.y0 <= 10 and t.y0 + 32 >= 17
        assert 0 <= t.x0 <= 300 - 32 and 0 <= t.y0 <= 200 - 32


def test_clip_and_filter_drops_boxes_that_lose_most_of_their_area():
    boxes = np.array([[-7.0, 0.0, 3.0, 10.0],  # keeps 30 % -> dropped
                      [-4.0, 0.0, 6.0, 10.0],  # keeps 60 % -> kept, clipped
                      [20.0, 20.0, 30.0, 30.0]], np.float32)  # outside -> dropped
    clipped, keep = _clip_and_filter(boxes, 16, 16, 0.5)
    assert keep.tolist() == [False, True, False]
    assert clipped[1].tolist() == [0.0, 0.0, 6.0, 10.0]


def test_gamma_lut_and_random_gamma():
    table = gamma_table(2.0)
    assert table.dtype == np.uint8 and table[0] == 0 and table[255] == 255
    assert table[128] == int((128 / 255) ** 2 * 255)
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    out = GammaLUTTransform(table).apply_image(img)
    assert out.shape == img.shape and np.array_equal(out[..., 0].ravel(), table)
    np.random.seed(0)
    aug = RandomGammaCorrection(0.5)
    exponents = []
    for _ in range(40):
        lut = aug.get_transform(img).table
        exponents.append(np.log(lut[128] / 255 + 1e-9) / np.log(128 / 255))
    assert min(exponents) < 1 < max(exponents)  # both gamma and 1 / gamma are drawn
    assert 0.45 < min(exponents) and max(exponents) < 2.1


def test_gamma_enabled_mapper_stays_consistent(records):
    rec = first(records, (320, 240))
    cfg = make_cfg(**{"INPUT.GAMMA_CORRECTION.ENABLED": "True"})
    d = NoCoDatasetMapper(cfg, is_train=True)(rec)
    boxes = d["instances"].gt_boxes.tensor.numpy()
    expected = noco_map(image_hwc_bgr(d), boxes).astype(np.float32)
    assert np.array_equal(d["noco_map"].numpy(), expected)


def test_other_box_modes_and_crowd_annotations(records):
    rec = dict(first(records, (320, 240)))
    x1, y1, x2, y2 = rec["annotations"][0]["bbox"]
    rec["annotations"] = [
        {"bbox": [x1, y1, x2 - x1, y2 - y1], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0},
        {"bbox": [0, 0, 5, 5], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 1},
    ]
    cfg = make_cfg(**{"INPUT.RESIZE_MODE_TRAIN": "none", "INPUT.FLIP_PROB": "0.0"})
    d = NoCoDatasetMapper(cfg, is_train=True)(rec)
    assert d["instances"].gt_boxes.tensor.tolist() == [[x1, y1, x2, y2]]
