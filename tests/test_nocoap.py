"""mNoCoAP (OSCAR spec 3): hand-made cases worked out here, and the real test split checked
against the plain loop transcription in ``nocoap_reference``."""
import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from nocoap_reference import mnocoap as reference_mnocoap

from deepinfrared_d2.evaluation import NOCO_THRESHOLDS, centroids_from_boxes, evaluate_nocoap
from deepinfrared_d2.evaluation.ground_truth import build_noco_ground_truth, ground_truth_from_maps
from deepinfrared_d2.evaluation.nocoap import (
    area_average_precision,
    canonical_order,
    match_centroids,
)
from deepinfrared_d2.evaluation.pd_fa import pd_fa


def pts(*rows):
    return np.array(rows, dtype=np.float32).reshape(-1, 3)


def test_thresholds_and_keys_are_the_reference_doubles():
    assert NOCO_THRESHOLDS[2] == 0.30000000000000004 and NOCO_THRESHOLDS[6] == 0.7000000000000001
    res = evaluate_nocoap([pts()], ground_truth_from_maps(["a"], [(4, 4)], [np.zeros((0, 4))]))
    assert list(res) == [f"NoCoAP{k}" for k in range(10, 100, 10)] + ["mNoCoAP"]
    assert all(v == 0.0 for v in res.values())  # no GT in the split -> 0


def test_spec_worked_example():
    a = np.zeros((10, 10))
    a[2, 2], a[2, 3], a[7, 7], a[9, 9] = 0.95, 0.45, 0.25, 0.85
    gt = ground_truth_from_maps(["A", "B"], [a, (8, 8)], [[(1, 1, 4, 4), (6, 6, 10, 10)], []])
    det_a = np.array([(1.5, 1.5, 2.5, 2.5, .9), (2, 1, 4, 3, .8), (8.5, 8.5, 10, 10, .7),
                      (6.8, 6.8, 7.2, 7.2, .6)], np.float32)
    det_b = np.array([(1, 1, 3, 3, .75)], np.float32)
    res = evaluate_nocoap([centroids_from_boxes(d[:, :4], d[:, 4]) for d in (det_a, det_b)], gt)
    assert [res[f"NoCoAP{k}"] for k in range(10, 90, 10)] == [0.75] * 8
    assert res["NoCoAP90"] == 0.5
    assert res["mNoCoAP"] == pytest.approx(0.7222222222222222, abs=1e-12)


def one_image_gt(noco, boxes):
    return ground_truth_from_maps(["img"], [noco], [boxes])


def test_image_without_gt_makes_every_detection_a_false_positive():
    m = np.full((6, 6), 0.99)  # high NoCo everywhere, but no GT box in image "bg"
    gt = ground_truth_from_maps(["t", "bg"], [np.pad([[0.99]], ((2, 3), (2, 3))), m],
                                [[(2, 2, 3, 3)], []])
    tp, scores = match_centroids([pts((2, 2, 0.5)), pts((1, 1, 0.9), (2, 2, 0.8))], gt)
    assert tp[:, 0].tolist() == [1] * 9 and tp[:, 1:].sum() == 0
    # Two FPs rank above the TP: precision 1/3 at recall 1 -> AP = 1/3 at every threshold.
    res = evaluate_nocoap([pts((2, 2, 0.5)), pts((1, 1, 0.9), (2, 2, 0.8))], gt)
    assert res["mNoCoAP"] == pytest.approx(float(np.float32(1) / np.float32(3)), abs=1e-7)


def test_rounding_is_half_to_even_and_only_the_far_border_is_clamped():
    noco = np.zeros((4, 5))
    noco[2, 2] = 0.6  # pixel reached by rounding 2.5 -> 2 (half to even), not 3
    noco[3, 4] = 0.6  # last row/col: reached by cy == H and cx == W (clamped)
    gt = one_image_gt(noco, [(1, 1, 4, 4), (3, 2, 5, 4)])
    tp, _ = match_centroids([pts((2.5, 2.5, 0.9), (5.0, 4.0, 0.8))], gt)
    assert tp[:, 0].tolist() == [1] * 5 + [0] * 4  # 0.6 > t only for t < 0.6
    assert tp[:, 1].tolist() == [1] * 5 + [0] * 4
    tp, _ = match_centroids([pts((3.5, 2.5, 0.9))], gt)  # 3.5 -> 4: noco[2, 4] == 0
    assert tp.sum() == 0
    with pytest.raises(ValueError, match="not a finite point inside the image"):
        match_centroids([pts((5.6, 1, 0.9))], gt)  # rounds to col 6 > W


def test_threshold_comparison_is_strict():
    t = NOCO_THRESHOLDS
    noco = np.zeros((3, 3))
    noco[1, 1] = t[4]  # exactly 0.5
    gt = one_image_gt(noco, [(0, 0, 3, 3)])
    tp, _ = match_centroids([pts((1, 1, 1.0))], gt)
    assert tp[:, 0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0]
    noco[1, 1] = np.nextafter(t[4], 1)
    tp, _ = match_centroids([pts((1, 1, 1.0))], one_image_gt(noco, [(0, 0, 3, 3)]))
    assert tp[:, 0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0]
    noco[1, 1] = t[2]  # 0.30000000000000004 is not > itself, but 0.3 + 1ulp is
    tp, _ = match_centroids([pts((1, 1, 1.0))], one_image_gt(noco, [(0, 0, 3, 3)]))
    assert tp[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0]


def test_duplicates_and_the_first_containing_box_rule():
    noco = np.zeros((10, 10))
    noco[4, 4] = noco[5, 5] = 0.95
    # Boxes overlap; the centroid (5, 5) lies in both, (4, 4) only in GT0 (inclusive bounds).
    gt = one_image_gt(noco, [(2, 2, 5, 5), (5, 5, 8, 8)])
    # Highest score first: (4,4) covers GT0. Then (5,5): first containing GT is GT0, already
    # covered -> FP, although GT1 also contains it and is free (spec 3.2 quirk).
    tp, _ = match_centroids([pts((4, 4, 0.9), (5, 5, 0.8))], gt)
    assert tp[:, 0].tolist() == [1] * 9 and tp[:, 1].tolist() == [0] * 9
    # Reverse the scores: (5,5) covers GT0 first, (4,4) is then a duplicate of GT0 -> FP.
    tp, _ = match_centroids([pts((4, 4, 0.8), (5, 5, 0.9))], gt)
    assert tp[:, 0].tolist() == [0] * 9 and tp[:, 1].tolist() == [1] * 9
    # Exact duplicates: only one is a TP; AP = area under precision 1 up to recall 1/2.
    res = evaluate_nocoap([pts((4, 4, 0.9), (4, 4, 0.9))], gt)
    assert res["mNoCoAP"] == pytest.approx(0.5)
    # A centroid on a high NoCo pixel outside every box is an FP.
    noco2 = np.zeros((10, 10))
    noco2[1, 1] = 0.9
    tp, _ = match_centroids([pts((1, 1, 0.9))], one_image_gt(noco2, [(2, 2, 5, 5)]))
    assert tp.sum() == 0


def test_area_ap_by_hand():
    # TP, FP, TP with 2 GTs: recall .5 .5 1, precision 1 .5 .667 -> envelope 1, .667, .667
    rec = np.array([0.5, 0.5, 1.0], np.float32)
    prec = np.array([1.0, 0.5, 2 / 3], np.float32)
    expect = np.float32(0.5) * np.float32(1.0) + np.float32(0.5) * np.float32(2 / 3)
    assert area_average_precision(rec, prec) == pytest.approx(expect, abs=1e-7)


@pytest.fixture(scope="module")
def test_full_gt():
    records = DatasetCatalog.get("sirst_v2_test_full")
    return records, build_noco_ground_truth(records, progress=False)


def random_detections(records, rng, per_image=20, tie_every=0):
    """Jittered GT boxes (scores 0.3-1) plus random boxes (scores 0-0.8), one box on the
    image's far border, optionally with many exact score ties."""
    dets = []
    for r in records:
        near = []
        for a in r["annotations"]:
            x1, y1, x2, y2 = a["bbox"]
            for _ in range(rng.integers(1, 3)):
                dx, dy = rng.normal(0, 1.0, 2).round(1)
                near.append((x1 + dx, y1 + dy, x2 + dx, y2 + dy))
        far = [(r["width"] - 2, r["height"] - 2, r["width"], r["height"])]
        for _ in range(per_image - len(near) - 1):
            x, y = rng.uniform(0, r["width"] - 4), rng.uniform(0, r["height"] - 4)
            far.append((x, y, x + rng.uniform(1, 8), y + rng.uniform(1, 8)))
        b = np.clip(np.array(near + far), 0, [r["width"], r["height"]] * 2)
        s = np.concatenate([rng.uniform(0.3, 1, len(near)), rng.uniform(0, 0.8, len(far))])
        if tie_every:
            s = np.round(s * tie_every) / tie_every  # many exact ties
        order = rng.permutation(len(b))
        dets.append(centroids_from_boxes(b[order], s[order]))
    return dets


@pytest.mark.parametrize("seed,tie_every", [(0, 0), (1, 0), (2, 20), (3, 5)])
def test_matches_the_loop_reference_on_real_test_full(test_full_gt, seed, tie_every):
    """Without ties: the original protocol (NumPy's default sorts) bit for bit. With ties: the
    original's sorts made stable, on each image's detections in the canonical order."""
    records, gt = test_full_gt
    dets = random_detections(records, np.random.default_rng(seed), tie_every=tie_every)
    scores = np.concatenate([d[:, 2] for d in dets])
    assert (len(np.unique(scores)) < len(scores)) == bool(tie_every)
    res = evaluate_nocoap(dets, gt)
    maps = [gt.dense_map(i) for i in range(len(gt))]
    boxes = [gt.image_boxes(i) for i in range(len(gt))]
    if tie_every:
        aps, mean = reference_mnocoap([d[canonical_order(d)] for d in dets], maps, boxes,
                                      kind="stable")
    else:
        aps, mean = reference_mnocoap(dets, maps, boxes)
    assert res["mNoCoAP"] == mean
    assert [res[f"NoCoAP{k}"] for k in range(10, 100, 10)] == aps  # unrounded
    assert 0.05 < res["mNoCoAP"] < 0.95  # a non-trivial case


def test_canonical_order_by_hand():
    d = pts((5, 1, 0.5), (2, 3, 0.9), (1, 3, 0.5), (7, 0, 0.5), (4, 1, 0.5))
    assert canonical_order(d).tolist() == [1, 3, 4, 0, 2]  # score, then row (cy), then col
    boxes = np.array([(0, 0, 2, 2), (0, 0, 1, 1), (1, 1, 3, 3)], np.float32)
    same = pts((1, 1, 0.5), (1, 1, 0.5), (1, 1, 0.5))  # same centroid: the box decides
    assert canonical_order(same, boxes).tolist() == [1, 0, 2]


@pytest.mark.parametrize("tie_every", [0, 5])
def test_no_figure_depends_on_the_order_of_the_detections(test_full_gt, tie_every):
    """Every image's detections shuffled (many exact ties with tie_every=5): mNoCoAP, the nine
    NoCoAPs and Pd/Fa are exactly equal."""
    records, gt = test_full_gt
    rng = np.random.default_rng(7)
    dets = random_detections(records, rng, tie_every=tie_every)
    shuffled = [d[rng.permutation(len(d))] for d in dets]
    assert any((a != b).any() for a, b in zip(dets, shuffled))
    assert evaluate_nocoap(shuffled, gt) == evaluate_nocoap(dets, gt)
    assert pd_fa(shuffled, gt) == pd_fa(dets, gt)
