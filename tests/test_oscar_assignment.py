"""OSCAR all-scale pseudo-box label assignment (spec 5.1) on hand-made boxes.

Expected positives are derived in the comments from the spec's rule (points strictly inside
the pseudo box; smallest original area wins, ties -> lowest index) and cross-checked against a
direct transcription of that rule with Python loops.
"""
import itertools

import pytest
import torch

from deepinfrared_d2.modeling.postprocess import grid_points
from oscar.assignment import assign_level, assign_points, pseudo_boxes
from oscar.postprocess import upsample_to_refine

COARSE_STRIDE, REFINE_STRIDE, STRIDE_RATIO = 8, 4, 1.5
COARSE_SIDE, REFINE_SIDE = COARSE_STRIDE, REFINE_STRIDE * STRIDE_RATIO  # 8 and 6 pixels


def rule_by_loops(points, boxes, side):
    """The spec 5.1 rule, point by point and box by box (slow, obviously right)."""
    out = []
    for px, py in points.tolist():
        best, best_area = -1, None
        for g, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            area = (x2 - x1) * (y2 - y1)
            if area > side * side:
                X1, Y1, X2, Y2 = x1, y1, x2, y2
            else:
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                X1, Y1, X2, Y2 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
            if px - X1 > 0 and py - Y1 > 0 and X2 - px > 0 and Y2 - py > 0:
                if best_area is None or area < best_area:
                    best, best_area = g, area
        out.append(best)
    return torch.tensor(out)


def positives(points, idx, gt):
    """Set of (x, y) points assigned to GT ``gt``."""
    return {tuple(p) for p in points[idx == gt].int().tolist()}


def test_grid_points_row_major_centres():
    pts = grid_points(2, 3, 8)
    assert pts.tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]


def test_pseudo_box_is_square_unless_area_exceeds_side_squared():
    gts = torch.tensor([[20., 20., 21., 21.],  # 1 px -> 8x8 square around (20.5, 20.5)
                        [0., 0., 8., 8.],  # area 64 == 8^2 (not strictly larger) -> square
                        [0., 0., 8., 9.]])  # area 72 > 64 -> the GT itself
    out = pseudo_boxes(gts, 8.0)
    assert out.tolist() == [[16.5, 16.5, 24.5, 24.5], [0, 0, 8, 8], [0, 0, 8, 9]]
    out6 = pseudo_boxes(gts, 6.0)  # all three exceed 36 except the 1 px one
    assert out6.tolist() == [[17.5, 17.5, 23.5, 23.5], [0, 0, 8, 8], [0, 0, 8, 9]]


HAND_BOXES = torch.tensor([
    [20., 20., 21., 21.],  # 0: 1x1 px, centre (20.5, 20.5)
    [40., 9., 43., 12.],  # 1: 3x3 px, centre (41.5, 10.5)
    [22., 30., 26., 34.],  # 2: 4x4 px, centre (24, 32): on multiples of 8 -> no coarse positive
    [40., 40., 60., 52.],  # 3: 20x12 px, area 240 > 64: pseudo box = GT at both levels
])


def test_hand_made_boxes_coarse_level():
    points = grid_points(8, 8, COARSE_STRIDE)  # 64x64 input, points 4, 12, ..., 60
    idx = assign_points(points, HAND_BOXES, COARSE_SIDE)
    # GT0: square (16.5, 24.5)^2 -> only x = y = 20.
    assert positives(points, idx, 0) == {(20, 20)}
    # GT1: x in (37.5, 45.5) -> 44; y in (6.5, 14.5) -> 12.
    assert positives(points, idx, 1) == {(44, 12)}
    # GT2: x in (20, 28), y in (28, 36): 20, 28 and 36 fail the strict test -> nothing.
    assert positives(points, idx, 2) == set()
    # GT3: x in (40, 60) -> 44, 52; y in (40, 52) -> 44.
    assert positives(points, idx, 3) == {(44, 44), (52, 44)}
    assert int((idx >= 0).sum()) == 4
    assert torch.equal(idx, rule_by_loops(points, HAND_BOXES, COARSE_SIDE))


def test_hand_made_boxes_refine_level():
    points = grid_points(16, 16, REFINE_STRIDE)  # points 2, 6, ..., 62
    idx = assign_points(points, HAND_BOXES, REFINE_SIDE)
    # GT0: square (17.5, 23.5)^2 -> x, y in {18, 22}: 2 x 2 positives.
    assert positives(points, idx, 0) == {(18, 18), (22, 18), (18, 22), (22, 22)}
    # GT1: x in (38.5, 44.5) -> 42; y in (7.5, 13.5) -> 10.
    assert positives(points, idx, 1) == {(42, 10)}
    # GT2: x in (21, 27) -> 22, 26; y in (29, 35) -> 30, 34.
    assert positives(points, idx, 2) == {(22, 30), (26, 30), (22, 34), (26, 34)}
    # GT3 (area 240 > 36, the GT itself): x in (40, 60) -> 42..58; y in (40, 52) -> 42, 46, 50.
    assert positives(points, idx, 3) == {(x, y) for x in (42, 46, 50, 54, 58) for y in (42, 46, 50)}
    assert torch.equal(idx, rule_by_loops(points, HAND_BOXES, REFINE_SIDE))


def test_tiny_targets_two_and_three_pixels():
    boxes = torch.tensor([[9., 9., 11., 11.],  # 2x2, centre (10, 10)
                          [33., 17., 35., 20.]])  # 2x3, centre (34, 18.5)
    coarse = grid_points(6, 6, COARSE_STRIDE)
    refine = grid_points(12, 12, REFINE_STRIDE)
    ic = assign_points(coarse, boxes, COARSE_SIDE)
    ir = assign_points(refine, boxes, REFINE_SIDE)
    # coarse GT0: (6, 14)^2 -> 12 only; GT1: x (30, 38) -> 36, y (14.5, 22.5) -> 20.
    assert positives(coarse, ic, 0) == {(12, 12)}
    assert positives(coarse, ic, 1) == {(36, 20)}
    # refine GT0: (7, 13)^2 -> 10; GT1: x (31, 37) -> 34, y (15.5, 21.5) -> 18.
    assert positives(refine, ir, 0) == {(10, 10)}
    assert positives(refine, ir, 1) == {(34, 18)}


def test_smallest_area_wins_and_ties_go_to_lowest_index():
    boxes = torch.tensor([[0., 0., 40., 40.],  # big (area 1600)
                          [18., 18., 21., 21.],  # small inside the big one
                          [18., 18., 21., 21.]])  # same area as GT1 -> GT1 wins
    points = grid_points(10, 10, REFINE_STRIDE)
    idx = assign_points(points, boxes, REFINE_SIDE)
    # GT1's square (16.5, 22.5)^2 contains x, y in {18, 22}.
    assert positives(points, idx, 1) == {(18, 18), (22, 18), (18, 22), (22, 22)}
    assert positives(points, idx, 2) == set()
    # every point (2, 6, ..., 38)^2 is strictly inside GT0; the 4 above go to GT1.
    assert len(positives(points, idx, 0)) == 100 - 4
    assert torch.equal(idx, rule_by_loops(points, boxes, REFINE_SIDE))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_boxes_match_the_rule(seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, 90, (12, 2), generator=g).float()
    wh = torch.randint(1, 25, (12, 2), generator=g).float()
    boxes = torch.cat([xy, xy + wh], dim=1)
    for stride, side in ((COARSE_STRIDE, COARSE_SIDE), (REFINE_STRIDE, REFINE_SIDE)):
        points = grid_points(128 // stride, 128 // stride, stride)
        assert torch.equal(assign_points(points, boxes, side), rule_by_loops(points, boxes, side))


def test_assign_level_targets_and_background_images():
    points = grid_points(8, 8, COARSE_STRIDE)
    boxes = [HAND_BOXES, torch.zeros((0, 4))]
    classes = [torch.zeros(4, dtype=torch.long), torch.zeros(0, dtype=torch.long)]
    coarse = assign_level(points, boxes, classes, COARSE_SIDE, num_classes=1,
                          regress_pseudo_box=True)
    assert coarse.labels.shape == (2, 64) and coarse.boxes.shape == (2, 64, 4)
    assert (coarse.labels[1] == 1).all() and (coarse.matched[1] == -1).all()
    pos = coarse.labels[0] == 0
    assert int(pos.sum()) == 4
    # coarse regression target = pseudo box: GT0 (1 px) -> its 8x8 square; GT3 -> itself.
    gt0_point = (points[:, 0] == 20) & (points[:, 1] == 20)
    assert coarse.boxes[0][gt0_point].tolist() == [[16.5, 16.5, 24.5, 24.5]]
    gt3_point = (points[:, 0] == 44) & (points[:, 1] == 44)
    assert coarse.boxes[0][gt3_point].tolist() == [[40, 40, 60, 52]]
    refine_points = grid_points(16, 16, REFINE_STRIDE)
    refine = assign_level(refine_points, boxes, classes, REFINE_SIDE, num_classes=1,
                          regress_pseudo_box=False)
    # refine regression target = the original GT box.
    rpos = refine.matched[0] >= 0
    assert torch.equal(refine.boxes[0][rpos], HAND_BOXES[refine.matched[0][rpos]])


def test_refine_cells_take_their_parent_coarse_cell():
    coarse = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    up = upsample_to_refine(coarse, (6, 10))
    for i, j in itertools.product(range(6), range(10)):
        assert torch.equal(up[0, :, i, j], coarse[0, :, i // 2, j // 2])
