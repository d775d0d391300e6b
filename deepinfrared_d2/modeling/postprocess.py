"""Point grids and distance decoding shared by the dense detectors, and their detections as
``Instances``; candidate selection, clip, rescale and NMS are the NumPy
``deepinfrared_d2.deploy.cell_detections`` (OSCAR spec 7.2, 7.5)."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from detectron2.structures import Boxes, Instances

__all__ = ["grid_points", "decode_distances", "detections_to_instances", "top_count"]


def grid_points(height: int, width: int, stride: float, device=None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Stride-s point grid ((j + 0.5) s, (i + 0.5) s), row-major (i outer): (H * W, 2) as (x, y).
    For even s this is mmdet's (j s + s // 2, i s + s // 2)."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * stride
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * stride
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def top_count(scores: torch.Tensor, k: int):
    """min(len(scores), k) for ``scores.topk``: an int, or under ONNX tracing a graph value
    (the number of candidates of a level is only known at run time)."""
    if torch.jit.is_tracing():
        return torch.clamp(torch._shape_as_tensor(scores)[0], max=k)
    return min(scores.shape[0], k)


def decode_distances(points: torch.Tensor, dists: torch.Tensor) -> torch.Tensor:
    """Points (P, 2) (x, y) and distances (..., P, 4) (l, t, r, b) -> boxes (..., P, 4) XYXY:
    (x - l, y - t, x + r, y + b), no clipping."""
    return torch.cat([points - dists[..., :2], points + dists[..., 2:]], dim=-1)


def detections_to_instances(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                            original_size: Tuple[int, int], device="cpu") -> Instances:
    """The arrays of ``deepinfrared_d2.deploy.cell_detections`` (boxes (n, 4) float32 in
    original pixels, scores (n,), classes (n,) int64) as Detectron2 ``Instances`` of the
    original image."""
    result = Instances((int(original_size[0]), int(original_size[1])))
    result.pred_boxes = Boxes(torch.from_numpy(boxes).to(device))
    result.scores = torch.from_numpy(scores).to(device)
    result.pred_classes = torch.from_numpy(classes).to(device)
    return result
