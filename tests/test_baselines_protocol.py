"""Detection protocol (spec 4.3 / 4.4) on hand-made maps: peaks, ties, plateaus, borders."""
import numpy as np
import pytest

from baselines import detect_points, points_to_boxes
from baselines.protocol import P1_TIE_WEIGHT


def _p1_score(rel, s, y, x):
    """P1 score written out: (1 - d) * relative strength + d * L / (1 + L), L = log(1 + z),
    z = (S(peak) - mean(S)) / std(S)."""
    lg = np.log1p((s[y, x] - s.mean()) / s.std())
    return (1 - P1_TIE_WEIGHT) * rel + P1_TIE_WEIGHT * lg / (1 + lg)


def _map(h=20, w=30):
    return np.zeros((h, w))


def test_single_peak_coordinates_are_x_column_y_row():
    s = _map()
    s[4, 17] = 2.0
    pts = detect_points(s)
    assert pts.dtype == np.float32 and pts.shape == (1, 3)
    assert pts[0, :2].tolist() == [17.0, 4.0]
    assert pts[0, 2] == np.float32(_p1_score(1.0, s, 4, 17))
    assert 1 - P1_TIE_WEIGHT < pts[0, 2] < 1  # the top point no longer scores exactly 1


def test_scores_are_max_normalised_and_sorted():
    s = _map()
    s[3, 3], s[10, 20], s[15, 8] = 4.0, 2.0, 1.0
    pts = detect_points(s)
    assert pts[:, :2].tolist() == [[3, 3], [20, 10], [8, 15]]
    np.testing.assert_allclose(pts[:, 2], [1.0, 0.5, 0.25], atol=P1_TIE_WEIGHT)
    expect = [_p1_score(r, s, y, x) for r, (y, x) in zip([1, 0.5, 0.25], [(3, 3), (10, 20),
                                                                        (15, 8)])]
    np.testing.assert_array_equal(pts[:, 2], np.float32(expect))


def test_p1_tie_break_is_the_z_score():
    """Equal relative strengths in two maps: the peak standing further above its own map (in
    units of the map's std) scores higher; within a map scores fall with S; a constant map
    adds nothing; scores stay in (0, 1)."""
    alone, busy = _map(), _map()
    alone[8, 8] = busy[8, 8] = 1.0
    busy[15:19, 2:28] = 0.6  # a bright band: the peak stands out less
    top_alone, top_busy = detect_points(alone)[0, 2], detect_points(busy)[0, 2]
    assert 1 - P1_TIE_WEIGHT < top_busy < top_alone < 1
    pts = detect_points(busy)
    assert np.all(np.diff(pts[:, 2]) <= 0) and pts[0, 2] > pts[1, 2] > 0  # band: equal peaks
    flat = np.full((9, 9), 2.0)
    assert detect_points(flat, k=1)[0, 2] == np.float32(1 - P1_TIE_WEIGHT)


def test_k_limits_number_of_points():
    s = _map(40, 40)
    for i, (y, x) in enumerate([(5, 5), (5, 20), (5, 35), (20, 5), (20, 20), (20, 35), (35, 5)]):
        s[y, x] = 10.0 - i
    assert len(detect_points(s, k=5)) == 5
    assert len(detect_points(s, k=2)) == 2
    assert detect_points(s, k=7)[-1, :2].tolist() == [5, 35]


def test_peaks_must_be_5x5_local_maxima():
    s = _map()
    s[10, 10] = 5.0
    s[10, 12] = 4.0  # inside the 5x5 window of the stronger peak: not a peak
    s[10, 13] = 3.0  # 3 px away, but (10, 12) within its window is higher: not a peak
    pts = detect_points(s)
    assert pts[:, :2].tolist() == [[10, 10]]


def test_ties_broken_in_raster_order_and_min_distance():
    s = _map()
    s[5, 10] = s[5, 25] = s[12, 3] = 1.0  # three equal isolated peaks
    pts = detect_points(s)
    assert pts[:, :2].tolist() == [[10, 5], [25, 5], [3, 12]]
    assert np.all(pts[:, 2] == pts[0, 2])  # identical neighbourhoods: still a tie


def test_plateau_gives_points_at_least_3px_apart():
    s = _map()
    s[5:8, 5:15] = 1.0  # 3 x 10 plateau: every pixel is a 5x5 maximum
    pts = detect_points(s, k=10)
    xy = pts[:, :2]
    assert xy[0].tolist() == [5, 5]  # first in raster order
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    assert np.all(d[np.triu_indices(len(xy), 1)] >= 3)
    assert all(5 <= x <= 14 and 5 <= y <= 7 for x, y in xy)


def test_border_peaks_are_found():
    s = _map()
    s[0, 0], s[19, 29], s[0, 15] = 3.0, 2.0, 1.0
    pts = detect_points(s)
    assert pts[:, :2].tolist() == [[0, 0], [29, 19], [15, 0]]


def test_nonpositive_nan_and_empty_maps():
    assert detect_points(-np.ones((10, 10))).shape == (0, 3)
    assert detect_points(np.zeros((10, 10))).shape == (0, 3)
    assert detect_points(np.zeros((0, 7))).shape == (0, 3)
    s = np.full((10, 10), np.nan)
    s[2, 3] = 1.0
    s[7, 7] = np.inf
    assert detect_points(s)[:, :2].tolist() == [[3, 2]]
    with pytest.raises(ValueError, match="2-D"):
        detect_points(np.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match="protocol"):
        detect_points(s, protocol="p9")


def test_p2_tiers_zscores_and_snap():
    s = _map(40, 40)
    s[10, 10], s[30, 30] = 4.0, 2.0
    image = np.zeros((40, 40))
    image[11, 12] = 9.0  # brightest pixel within radius 2 of the first peak
    pts = detect_points(s, image, protocol="p2", k=5)
    assert pts[:, :2].tolist() == [[12, 11], [30, 30]]
    assert 4.5 < pts[0, 2] < 5.0 and 3.5 < pts[1, 2] < 4.0  # tiers k-1-r + 0.5 +- 0.5
    with pytest.raises(ValueError, match="image"):
        detect_points(s, protocol="p2")


def test_p2_snap_ties_prefer_the_nearest_pixel():
    s = _map()
    s[10, 10] = 1.0
    image = np.zeros((20, 30))
    image[8, 8] = image[10, 11] = 5.0
    assert detect_points(s, image, protocol="p2")[0, :2].tolist() == [11, 10]


def test_boxes_cover_the_blob_and_keep_the_point():
    s = _map()
    s[8:11, 4:9] = 1.0
    s[9, 6] = 2.0
    pts = detect_points(s)
    assert pts[0, :2].tolist() == [6, 9]
    boxes = points_to_boxes(s, pts)
    assert boxes.tolist() == [[4, 8, 5, 3]]  # {S >= 1} component: cols 4-8, rows 8-10


def test_boxes_single_pixel_and_border_clipping():
    s = _map()
    s[0, 0] = 1.0
    s[10, 15] = 1.0
    pts = detect_points(s)
    boxes = points_to_boxes(s, pts)
    assert boxes.tolist() == [[0, 0, 3, 3], [13, 8, 5, 5]]
