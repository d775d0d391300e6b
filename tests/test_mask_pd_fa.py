"""Pixel-level Pd/Fa of segmentation maps, cross-checked with the PyPI package pyirstdmetrics
(lartpang/PyIRSTDMetrics) on real SIRST-V2 masks and perturbed predictions."""
import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from py_irstd_metrics import ProbabilityDetectionAndFalseAlarmRate

from deepinfrared_d2.data import read_mask
from deepinfrared_d2.evaluation import mask_pd_fa


def test_by_hand():
    gt = np.zeros((20, 20), bool)
    gt[2:4, 2:4] = True  # centroid (2.5, 2.5)
    gt[10, 10] = True
    pred = np.zeros((20, 20))
    pred[3:5, 3:5] = 0.9  # centroid (3.5, 3.5): 1.41 px -> match
    pred[15:17, 15:18] = 0.8  # 6 false-alarm pixels
    pred[10, 13] = 0.6  # 3 px from (10, 10): not < 3 -> false alarm (1 pixel)
    res = mask_pd_fa([pred], [gt])
    assert res["Pd"] == 0.5 and res["Fa"] == 7 / 400
    assert mask_pd_fa([pred], [gt], threshold=0.85)["Fa"] == 0.0


def perturbed_predictions(masks, rng):
    """Dilated/shifted/dropped targets plus random blobs: maps in [0, 1]."""
    preds = []
    for m in masks:
        p = np.zeros(m.shape)
        if rng.random() < 0.8:
            dy, dx = rng.integers(-3, 4, 2)
            p += np.roll(m, (dy, dx), axis=(0, 1)) * rng.uniform(0.4, 1)
        for _ in range(rng.integers(0, 4)):
            y, x = rng.integers(0, m.shape[0] - 4), rng.integers(0, m.shape[1] - 4)
            p[y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = rng.uniform(0, 1)
        preds.append(np.clip(p, 0, 1))
    return preds


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_pyirstdmetrics_on_real_masks(seed):
    records = DatasetCatalog.get("sirst_v2_test_full")[seed * 60: seed * 60 + 60]
    masks = [read_mask(r["sem_seg_file_name"]) for r in records]
    preds = perturbed_predictions(masks, np.random.default_rng(seed))
    ref = ProbabilityDetectionAndFalseAlarmRate(num_bins=1, distance_threshold=3)
    for p, m in zip(preds, masks):
        ref.update(p, m)
    expected = ref.get()
    ours = mask_pd_fa(preds, masks, threshold=0.5)
    assert ours["Pd"] == pytest.approx(float(expected["probability_detection"][0]), abs=1e-12)
    assert ours["Fa"] == pytest.approx(float(expected["false_alarm"][0]), abs=1e-15)
    assert 0 < ours["Pd"] < 1 and ours["Fa"] > 0
