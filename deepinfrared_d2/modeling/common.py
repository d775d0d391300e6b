"""Input normalisation and training-statistics logging shared by the dense meta-architectures."""
from __future__ import annotations

from typing import Dict, List

import torch
from detectron2.structures import ImageList
from detectron2.utils.events import get_event_storage

__all__ = ["normalize_and_pad", "log_scalars"]


def normalize_and_pad(batched_inputs: List[Dict], pixel_mean: torch.Tensor,
                      pixel_std: torch.Tensor, size_divisibility: int) -> ImageList:
    """``(image - mean) / std`` in float32 on the device of ``pixel_mean``, then zero padding
    (bottom / right) to a multiple of ``size_divisibility`` (OSCAR spec 7.1, 8.1 steps 5-7).

    Args:
        batched_inputs: dicts with ``"image"``, a (3, H, W) uint8 tensor.
        pixel_mean, pixel_std: (3, 1, 1) float32 tensors.
    """
    images = [(x["image"].to(pixel_mean.device).float() - pixel_mean) / pixel_std
              for x in batched_inputs]
    return ImageList.from_tensors(images, size_divisibility, pad_value=0.0)


def log_scalars(prefix: str, values: Dict[str, float]) -> None:
    """Put ``{prefix}/{name}`` scalars into the current EventStorage (no-op outside a trainer)."""
    try:
        storage = get_event_storage()
    except AssertionError:
        return
    for name, value in values.items():
        storage.put_scalar(f"{prefix}/{name}", value)
