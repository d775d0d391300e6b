"""FCOS-RFLA and FCOS label assignment on hand-made boxes (OSCAR spec 5.2), with the answers
worked out here.

For a square GT of side w and a concentric square rf box of side s, KL = f(s / w) with
f(r) = r^2 - 1 - 2 ln r (minimal at r = 1); a centre offset (dx, dy) adds 2 (dx^2 + dy^2) / w^2.
So on one level the similarity ranks points by their distance to the GT centre, and a
1-3 px target prefers P3's 45.5 px rf boxes over P4's 133.5 px ones by far (f(45.5 / 2) = 510
against f(133.5 / 2) = 4446, while one P3 step of 8 px adds only 2 * 64 / 4 = 32).
"""
import math

import pytest
import torch

from deepinfrared_d2.modeling.postprocess import grid_points
from fcos.assignment import (
    fcos_assign,
    fcos_targets,
    hierarchical_assign,
    kld_similarity,
    rank_assign,
    receptive_field_boxes,
    rfla_assign,
    shrink_boxes_,
)

PAPER_SIDES = [45.5, 133.5, 213.5, 277.5, 405.5]  # TRF(P3..P7) x 0.5 (spec 5.2.1)
STRIDES = [8, 16, 32, 64, 128]


def f(r):
    return r * r - 1 - 2 * math.log(r)


def square(cx, cy, side):
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def pyramid(size=128):
    """Points of P3-P7 of a size x size input and each point's rf side and level."""
    points, sides, levels = [], [], []
    for level, (stride, side) in enumerate(zip(STRIDES, PAPER_SIDES)):
        n = math.ceil(size / stride)
        pts = grid_points(n, n, stride)
        points.append(pts)
        sides.append(torch.full((len(pts),), side))
        levels.append(torch.full((len(pts),), level))
    return torch.cat(points), torch.cat(sides), torch.cat(levels)


def test_kld_similarity_matches_the_formula():
    gt = torch.tensor([square(10, 10, 2)])
    boxes = torch.tensor([square(10, 10, 2), square(10, 10, 4), square(13, 6, 4)])
    sim = kld_similarity(gt, boxes)[0]
    assert sim[0].item() == pytest.approx(1.0)  # same Gaussian: KL = 0
    assert sim[1].item() == pytest.approx(1 / (1 + f(2.0)), rel=1e-5)  # 3 - ln 4
    kl = f(2.0) + 2 * (3 ** 2 + 4 ** 2) / 2 ** 2
    assert sim[2].item() == pytest.approx(1 / (1 + kl), rel=1e-5)
    # not symmetric: KL from the rf box's Gaussian to the GT's
    assert kld_similarity(boxes[1:2], gt)[0, 0].item() == pytest.approx(1 / (1 + f(0.5)),
                                                                          rel=1e-5)


def test_rank_assign_ties_and_later_gt_wins():
    sim = torch.tensor([[0.9, 0.5, 0.9, 0.1],
                        [0.2, 0.9, 0.3, 0.3]])
    # k = 1: GT 0 claims both points at its top value 0.9 (a tie: 2 positives), GT 1 point 1
    assert rank_assign(sim, 1).tolist() == [0, 1, 0, -1]
    # k = 2: GT 1's second value 0.3 is tied by points 2 and 3; GT 1 comes later and takes
    # point 2 from GT 0
    assert rank_assign(sim, 2).tolist() == [0, 1, 1, 1]


@pytest.mark.parametrize("side", [1.0, 2.0, 3.0])
def test_tiny_target_on_a_p3_point_gets_its_3x3_neighbourhood(side):
    points, sides, levels = pyramid()
    gt = torch.tensor([square(60, 60, side)])  # (60, 60) = P3 point (7, 7)
    matched = rfla_assign(points, sides, [gt], [6, 1], 0.9, "faithful")[0]
    pos = matched >= 0
    # top-6 values at P3: the centre (1 point), 4 points 8 px away, then 4 diagonal points
    # 8 sqrt(2) away tie for the 6th value -> 9 positives; stage 2 (top-1) picks the centre again
    assert int(pos.sum()) == 9 and (levels[pos] == 0).all()
    offsets = (points[pos] - torch.tensor([60.0, 60.0])).abs()
    assert set(map(tuple, offsets.tolist())) == {(0, 0), (8, 0), (0, 8), (8, 8)}


@pytest.mark.parametrize("side", [1.0, 2.0, 3.0])
def test_tiny_target_between_p3_points_ties_to_twelve_positives(side):
    points, sides, levels = pyramid()
    gt = torch.tensor([square(64, 64, side)])  # between P3 points 60 and 68 on both axes
    matched = rfla_assign(points, sides, [gt], [6, 1], 0.9, "clean")[0]
    pos = matched >= 0
    # the 4 points at (+-4, +-4) share the top value; the 8 at (+-4, +-12) / (+-12, +-4) tie
    # for the 5th-12th: all 12 are positive (ties give more than 6)
    assert int(pos.sum()) == 12 and (levels[pos] == 0).all()
    offsets = sorted(sorted(o) for o in (points[pos] - 64).abs().tolist())
    assert offsets == [[4, 4]] * 4 + [[4, 12]] * 8


def test_two_tiny_targets_share_a_tied_point_and_the_later_one_wins():
    points, sides, _ = pyramid()
    gts = torch.tensor([square(56, 60, 2), square(64, 60, 2)])  # 4 px left / right of (60, 60)
    matched = rfla_assign(points, sides, [gts], [6, 1], 0.9, "clean")[0]
    at = {tuple(p): int(m) for p, m in zip(points.tolist(), matched.tolist()) if m >= 0}
    assert at[(60.0, 60.0)] == 1  # equally close to both: GT 1 overwrites GT 0
    assert at[(52.0, 60.0)] == 0 and at[(68.0, 60.0)] == 1


def test_shrink_is_in_place_about_the_centre():
    boxes = torch.tensor([square(4, 4, 10.0), square(20, 12, 45.5)])
    out = shrink_boxes_(boxes, 0.9)
    assert out is boxes
    assert torch.allclose(boxes, torch.tensor([square(4, 4, 9.0), square(20, 12, 40.95)]))


# Two points at the same place with rf sides 9 and 12 and a square GT of side 10 on them:
# at x1, f(0.9) = 0.021 < f(1.2) = 0.075 (the small box wins); at x0.9, f(0.81) = 0.077 >
# f(1.08) = 0.013 (the large one wins); at x0.81, f(0.729) = 0.164 > f(0.972) = 0.002.
HAND_POINTS = torch.tensor([[50.0, 50.0], [50.0, 50.0], [200.0, 200.0]])
HAND_SIDES = torch.tensor([9.0, 12.0, 9.0])
HAND_GT = torch.tensor([square(50, 50, 10)])


def test_stage_two_adds_the_best_shrunk_box():
    rf = receptive_field_boxes(HAND_POINTS, HAND_SIDES)
    # stage 1 (x1, top-1): the 9 px box; stage 2 (x0.9, top-1): the 12 px box, not yet positive
    assert hierarchical_assign(HAND_GT, rf, [1, 1], 0.9).tolist() == [0, 0, -1]
    assert torch.allclose(rf, receptive_field_boxes(HAND_POINTS, HAND_SIDES * 0.9))


@pytest.mark.parametrize("mode", ["faithful", "clean"])
def test_faithful_mode_shrinks_the_shared_boxes_for_every_image_with_targets(mode):
    empty = torch.zeros((0, 4))
    matched = rfla_assign(HAND_POINTS, HAND_SIDES, [HAND_GT, empty, HAND_GT], [1, 1], 0.9, mode)
    assert matched[0].tolist() == [0, 0, -1]
    assert matched[1].tolist() == [-1, -1, -1]  # no GT: the assigner is not called
    if mode == "clean":
        assert matched[2].tolist() == [0, 0, -1]
    else:
        # the second image with targets ranks on sides x 0.9 (12 px box wins) and x 0.81
        # (12 px box again): only one positive
        assert matched[2].tolist() == [-1, 0, -1]


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="faithful"):
        rfla_assign(HAND_POINTS, HAND_SIDES, [HAND_GT], [1, 1], 0.9, "exact")


def test_vanilla_fcos_assignment():
    points = grid_points(8, 8, 8)  # P3 of a 64 x 64 input: 4, 12, ..., 60
    ranges = torch.tensor([[-1.0, 64.0]]).expand(len(points), -1)
    # a 3 px target between points contains none of them: no positive at all
    assert (fcos_assign(points, ranges, torch.tensor([[9.0, 9.0, 11.0, 11.0]])) < 0).all()
    gts = torch.tensor([[10.0, 10.0, 30.0, 30.0],    # area 400: points 12, 20, 28 per axis
                        [18.0, 18.0, 26.0, 26.0],    # area 64: point (20, 20)
                        [26.0, 26.0, 34.0, 34.0]])   # area 64: point (28, 28)
    matched = fcos_assign(points, ranges, gts)
    at = {tuple(p): int(m) for p, m in zip(points.tolist(), matched.tolist())}
    # the smallest GT containing the point wins: 7 of GT 0's 9 points stay with it
    assert at[(20.0, 20.0)] == 1 and at[(28.0, 28.0)] == 2
    assert at[(12.0, 12.0)] == 0 and at[(4.0, 4.0)] == -1
    assert int((matched == 0).sum()) == 7 and int((matched >= 0).sum()) == 9
    # range [-1, 8]: GT 0's points are 10-18 px from a side, GT 1's and 2's only 6 px
    narrow = torch.tensor([[-1.0, 8.0]]).expand(len(points), -1)
    assert int((fcos_assign(points, narrow, gts) >= 0).sum()) == 2


def test_equal_areas_go_to_the_lowest_index():
    points = torch.tensor([[20.0, 20.0]])
    ranges = torch.tensor([[-1.0, 64.0]])
    gts = torch.tensor([[16.0, 16.0, 24.0, 24.0], [12.0, 18.0, 28.0, 22.0]])  # both area 64
    assert fcos_assign(points, ranges, gts).tolist() == [0]


def test_targets_in_stride_units_and_clamped_centerness():
    points = torch.tensor([[4.0, 4.0], [20.0, 12.0]])
    strides = torch.tensor([8.0, 8.0])
    gts = torch.tensor([[6.0, 0.0, 8.0, 8.0], [12.0, 4.0, 32.0, 24.0]])
    dists, ctr = fcos_targets(points, strides, gts, torch.tensor([0, 1]), True, 0.01)
    # point 0 lies 2 px left of its GT: l = -2 / 8, r = 4 / 8, t = b = 4 / 8
    assert dists.tolist() == [[-0.25, 0.5, 0.5, 0.5], [1.0, 1.0, 1.5, 1.5]]
    assert ctr[0].item() == pytest.approx(math.sqrt(0.01 / 0.5 * 1.0))
    assert ctr[1].item() == pytest.approx(math.sqrt(1 / 1.5 * 1 / 1.5))
    pixels, _ = fcos_targets(points, strides, gts, torch.tensor([-1, 1]), False, 0.0)
    assert pixels.tolist() == [[8.0, 8.0, 12.0, 12.0]]


def test_positives_tool_on_real_images(sirst_root):
    """projects/FCOS/positives.py on real SIRST-V2 boxes: vanilla FCOS positives lie inside
    their GT by definition; RFLA gives every image at least its stage-1 top-6, and at native
    resolution on P3-P7 most of them lie outside the (few-pixel) GT boxes."""
    import importlib.util
    import os

    from detectron2.data import DatasetCatalog
    from detectron2.modeling import build_model

    from deepinfrared_d2.config import get_cfg

    root = os.path.join(os.path.dirname(__file__), "..", "projects", "FCOS")
    spec = importlib.util.spec_from_file_location("fcos_positives",
                                                  os.path.join(root, "positives.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    records = [r for r in DatasetCatalog.get("sirst_v2_trainval_full") if r["annotations"]][:20]

    def summary(name):
        cfg = get_cfg(os.path.join(root, "configs", name), ["MODEL.DEVICE", "cpu"])
        return tool.positives_summary(build_model(cfg), records)

    vanilla, rfla = summary("fcos_R18_FPN_cpu.yaml"), summary("fcos_rfla_R18_FPN_cpu.yaml")
    assert vanilla["inside_gt"] == 1.0 and vanilla["positives_per_image"] < 6
    assert rfla["positives_per_image"] >= 6 and rfla["inside_gt"] < 0.5
    assert rfla["level_shares"][0] > 0.9  # few-pixel targets: the finest level only
    assert sum(rfla["level_shares"]) == pytest.approx(1.0, abs=1e-3)
