"""Map-to-point detection protocol (spec 4.3 / 4.4), identical for every method.

``p1`` (default): peaks of the map in a 5 x 5 window, greedy suppression at < 3 px, top K,
score = (1 - d) S(peak) / max(S) + d g: the relative strength, with a secondary key g from
the peak's z-score over its map folded in with weight d = ``P1_TIE_WEIGHT`` (:func:`tie_key`),
so that equal relative strengths (every image's top point has S / max S = 1) are ordered by
how far the peak stands above its own map, not by the order in which the metric meets
them. ``p2`` (calibrated): same peaks, score = tier + squashed z-score, and each point
snapped to the brightest image pixel within radius 2. Points are (x = column, y = row),
0-based integer pixel coordinates.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage as ndi

__all__ = ["PROTOCOLS", "detect_points", "points_to_boxes", "find_peaks", "peak_zscores",
           "tie_key"]

PROTOCOLS = ("p1", "p2")
PEAK_WINDOW = 5
MIN_DISTANCE = 3.0
SNAP_RADIUS = 2
# Weight of the z-score key in P1 scores: it can reorder only points whose relative strengths
# differ by less than 1 %, and it keeps z-scores 0.05 % apart distinct (for z up to 1000) in
# the float32 scores the metric compares.
P1_TIE_WEIGHT = 1e-2


def _sanitise(target_map: np.ndarray) -> np.ndarray:
    s = np.asarray(target_map, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"expected a 2-D target map (H, W), got shape {s.shape}")
    if s.size and not np.isfinite(s).all():
        s = np.where(np.isfinite(s), s, 0.0)
    return s


def find_peaks(s: np.ndarray, k: int = 5, window: int = PEAK_WINDOW,
               min_distance: float = MIN_DISTANCE) -> np.ndarray:
    """Up to ``k`` peaks (rows (y, x), int64, best first) of a finite map ``s`` (P1 steps 2-5).

    A peak equals the maximum of its ``window`` x ``window`` neighbourhood (replicate border)
    and is > 0; peaks are visited by value (ties in raster order) and accepted when at least
    ``min_distance`` px from every accepted peak.
    """
    if s.size == 0 or k <= 0 or not (s.max() > 0):
        return np.zeros((0, 2), np.int64)
    is_peak = (s == ndi.maximum_filter(s, size=window, mode="nearest")) & (s > 0)
    ys, xs = np.nonzero(is_peak)  # raster order
    order = np.argsort(-s[ys, xs], kind="stable")
    accepted = []
    md2 = min_distance * min_distance
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        if all((y - ay) ** 2 + (x - ax) ** 2 >= md2 for ay, ax in accepted):
            accepted.append((y, x))
            if len(accepted) == k:
                break
    return np.asarray(accepted, np.int64).reshape(-1, 2)


def peak_zscores(s: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """z-scores (vals - mean(S)) / std(S) of peak values over the whole map (0 when the map
    is constant): how far each peak stands above its own map, the statistic of the adaptive
    threshold T = mean + k std that the classical papers detect with."""
    mean, std = float(s.mean()), float(s.std())
    return (vals - mean) / std if std > 0 else np.zeros_like(vals)


def tie_key(z: np.ndarray) -> np.ndarray:
    """P1's secondary key g in [0, 1) of peaks with z-scores ``z``: g = L / (1 + L),
    L = log(1 + max(z, 0)); strictly increasing in z >= 0 and logarithmic, so that the large
    z of sparse maps stay distinct in float32 scores."""
    lg = np.log1p(np.maximum(z, 0.0))
    return lg / (1.0 + lg)


def _snap(image: np.ndarray, y: int, x: int, radius: int) -> tuple:
    """Brightest image pixel within ``radius`` (Chebyshev) of (y, x); ties: nearest, then
    raster order."""
    h, w = image.shape
    y0, y1 = max(0, y - radius), min(h, y + radius + 1)
    x0, x1 = max(0, x - radius), min(w, x + radius + 1)
    win = image[y0:y1, x0:x1]
    cy, cx = np.nonzero(win == win.max())
    d2 = (cy + y0 - y) ** 2 + (cx + x0 - x) ** 2
    j = int(np.argmin(d2))  # argmin returns the first (raster order) among equal distances
    return int(cy[j] + y0), int(cx[j] + x0)


def detect_points(target_map: np.ndarray, image: Optional[np.ndarray] = None,
                  protocol: str = "p1", k: int = 5) -> np.ndarray:
    """Scored points of one target map: float32 array (m, 3) of rows (x, y, score), m <= k.

    ``target_map``: (H, W) float; NaN/Inf count as 0; a map with no positive value gives no
    points. ``protocol``: "p1" (score = (1 - d) S / max S + d g in (0, 1), d =
    ``P1_TIE_WEIGHT``, g = :func:`tie_key` of the peak's z-score; the top point scores in
    [1 - d, 1); scores decrease with S within an image) or "p2" (score = tier
    (k - 1 - rank) + 0.5 + 0.5 z / (1 + |z|), z the peak's z-score over the map; points
    snapped to the brightest pixel of ``image`` within 2 px, which P2 therefore requires;
    a snapped point landing on an already emitted one is dropped).
    """
    protocol = protocol.lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
    s = _sanitise(target_map)
    if protocol == "p2":
        if image is None:
            raise ValueError("protocol 'p2' snaps points to the image: pass image=")
        image = np.asarray(image, dtype=np.float64)
        if image.shape != s.shape:
            raise ValueError(f"image shape {image.shape} != target map shape {s.shape}")
    peaks = find_peaks(s, k)
    if len(peaks) == 0:
        return np.zeros((0, 3), np.float32)
    vals = s[peaks[:, 0], peaks[:, 1]]
    if protocol == "p1":
        d = P1_TIE_WEIGHT
        score = (1.0 - d) * (vals / s.max()) + d * tie_key(peak_zscores(s, vals))
        return np.column_stack([peaks[:, 1], peaks[:, 0], score]).astype(np.float32)
    z = peak_zscores(s, vals)
    if not np.isfinite(image).all():
        image = np.where(np.isfinite(image), image, -np.inf)
    rows, seen = [], set()
    for r, ((y, x), zi) in enumerate(zip(peaks, z)):
        sy, sx = _snap(image, int(y), int(x), SNAP_RADIUS)
        if (sy, sx) in seen:
            continue
        seen.add((sy, sx))
        rows.append((sx, sy, (k - 1 - r) + 0.5 + 0.5 * zi / (1.0 + abs(zi))))
    return np.asarray(rows, np.float64).astype(np.float32)


def points_to_boxes(target_map: np.ndarray, points: np.ndarray, window: int = 11,
                    rel_threshold: float = 0.5) -> np.ndarray:
    """Small boxes around detected points (spec 4.3): float32 (m, 4) rows [x, y, w, h].

    For each point, the 8-connected component containing it of {S >= rel_threshold * S(pt)}
    inside a ``window`` x ``window`` window around it; the box is its extent, enlarged to at
    least the 3 x 3 box around the point and clipped to the image. A one-pixel component
    (or a point with S <= 0) gives the 5 x 5 box centred on the point (clipped). The point
    itself is never moved; boxes are half-open pixel rectangles (w, h in pixels).
    """
    s = _sanitise(target_map)
    pts = np.asarray(points, dtype=np.float64)
    pts = pts.reshape(0, 2) if pts.size == 0 else np.atleast_2d(pts)
    h, w = s.shape
    half = window // 2
    boxes = np.zeros((len(pts), 4), np.float32)
    eight = np.ones((3, 3), bool)
    for i, (px, py) in enumerate(pts[:, :2].round().astype(np.int64)):
        y0, y1 = max(0, py - half), min(h, py + half + 1)
        x0, x1 = max(0, px - half), min(w, px + half + 1)
        v = s[py, px]
        comp = None
        if v > 0:
            lab, _ = ndi.label(s[y0:y1, x0:x1] >= rel_threshold * v, structure=eight)
            comp = lab == lab[py - y0, px - x0]
        if comp is None or comp.sum() <= 1:
            bx0, by0, bx1, by1 = px - 2, py - 2, px + 3, py + 3
        else:
            cy, cx = np.nonzero(comp)
            bx0 = min(cx.min() + x0, px - 1)
            bx1 = max(cx.max() + x0 + 1, px + 2)
            by0 = min(cy.min() + y0, py - 1)
            by1 = max(cy.max() + y0 + 1, py + 2)
        bx0, by0 = max(0, bx0), max(0, by0)
        bx1, by1 = min(w, bx1), min(h, by1)
        boxes[i] = (bx0, by0, bx1 - bx0, by1 - by0)
    return boxes
