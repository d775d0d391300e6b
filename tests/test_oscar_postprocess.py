"""OSCAR inference for one image (spec 7.2) on hand-made head outputs."""
import math

import torch

from deepinfrared_d2.modeling.postprocess import decode_distances
from oscar.postprocess import oscar_detections


def logit(p):
    return math.log(p / (1 - p))


def make_outputs():
    """4x4 refine map (stride 4) of a 16x16 resized image; four candidate cells."""
    refine = torch.full((1, 4, 4), -10.0)
    coarse = torch.zeros((1, 4, 4))  # coarse prob 0.5 everywhere ...
    noco = torch.zeros((1, 4, 4))  # ... NoCo prob 0.5 everywhere
    anchors = torch.zeros((4, 4, 4))
    deltas = torch.zeros((4, 4, 4))
    # A: p_r 0.9, box (2, 2, 6, 6)
    refine[0, 1, 1] = logit(0.9)
    anchors[:, 1, 1] = torch.tensor([2.0, 2.0, 6.0, 6.0])
    # B: p_r 0.8, anchor (2, 2, 6, 6) + 4 * (0, 0, 0.25, 0) = (2, 2, 7, 6): IoU 0.8 with A
    refine[0, 1, 2] = logit(0.8)
    anchors[:, 1, 2] = torch.tensor([2.0, 2.0, 6.0, 6.0])
    deltas[:, 1, 2] = torch.tensor([0.0, 0.0, 0.25, 0.0])
    # C: p_r 0.6 but the highest fused score (coarse 0.99, NoCo 0.99); box runs off the image
    refine[0, 3, 3] = logit(0.6)
    coarse[0, 3, 3] = logit(0.99)
    noco[0, 3, 3] = logit(0.99)
    anchors[:, 3, 3] = torch.tensor([12.0, 12.0, 16.0, 16.0])
    deltas[:, 3, 3] = torch.tensor([0.0, 0.0, 1.0, 1.0])  # -> (12, 12, 20, 20), clipped to 16
    # D: p_r just above / E: just below the 0.05 threshold
    refine[0, 0, 3] = logit(0.0502)
    anchors[:, 0, 3] = torch.tensor([12.0, 0.0, 14.0, 2.0])
    refine[0, 2, 0] = logit(0.0497)
    anchors[:, 2, 0] = torch.tensor([0.0, 8.0, 2.0, 10.0])
    return refine, deltas, noco, coarse, anchors


def run(nms_pre=1000, max_per_image=100):
    refine, deltas, noco, coarse, anchors = make_outputs()
    # resized 16x16 from an original of h=32, w=8: scale factors (w 2.0, h 0.5)
    return oscar_detections(refine, deltas, noco, coarse, anchors, refine_stride=4,
                            image_size=(16, 16), original_size=(32, 8), score_thresh=0.05,
                            nms_pre=nms_pre, nms_thresh=0.5, max_per_image=max_per_image)


def test_candidates_fused_scores_nms_clip_and_rescale():
    out = run()
    assert out.image_size == (32, 8)
    # B is suppressed by A (IoU 0.8 > 0.5); E is below the threshold; sorted by fused score.
    expected_scores = [0.6 * 0.99 * 0.99, 0.9 * 0.25, 0.0502 * 0.25]
    assert torch.allclose(out.scores, torch.tensor(expected_scores), rtol=1e-4)
    expected_boxes = torch.tensor([[12.0, 12.0, 16.0, 16.0],  # C, clipped to the 16x16 image
                                   [2.0, 2.0, 6.0, 6.0],  # A
                                   [12.0, 0.0, 14.0, 2.0]])  # D
    expected_boxes /= torch.tensor([2.0, 0.5, 2.0, 0.5])  # to original pixels
    assert torch.allclose(out.pred_boxes.tensor, expected_boxes)
    assert out.pred_classes.tolist() == [0, 0, 0]


def test_candidate_selection_uses_refine_probability_only():
    out = run(nms_pre=2)  # keeps A and B (highest p_r); C never becomes a candidate
    assert len(out) == 1
    assert math.isclose(out.scores.item(), 0.9 * 0.25, rel_tol=1e-5)


def test_max_per_image():
    assert len(run(max_per_image=2)) == 2


def test_decode_distances():
    points = torch.tensor([[4.0, 4.0], [12.0, 4.0]])
    dists = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]])
    assert decode_distances(points, dists).tolist() == [[3, 2, 7, 8], [11.5, 3.5, 12.5, 4.5]]
