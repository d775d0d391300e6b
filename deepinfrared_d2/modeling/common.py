"""What the dense meta-architectures (OSCAR, FCOS) share around their networks: input
normalisation, the per-image NumPy post-processing, training-statistics logging."""
from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

import numpy as np
import torch
from detectron2.structures import ImageList, Instances
from detectron2.utils.events import get_event_storage
from torch import nn

from ..deploy.postprocess import cell_detections
from .postprocess import detections_to_instances

__all__ = ["DenseDetector", "normalize_and_pad", "log_scalars"]


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


class DenseDetector(nn.Module):
    """Base of the dense meta-architectures: ``backbone``, ``head``, the backbone outputs the
    head reads, and the pixel normalisation (``MODEL.PIXEL_MEAN`` / ``PIXEL_STD``, (3, 1, 1)
    buffers that follow the model's device but are not saved in checkpoints)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, head_in_features: Sequence[str],
                 pixel_mean: Sequence[float], pixel_std: Sequence[float]):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.head_in_features = list(head_in_features)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        """Normalise ((x - mean) / std, float32) then pad with 0 to a multiple of the
        backbone's size divisibility (32, as mmdet pads)."""
        return normalize_and_pad(batched_inputs, self.pixel_mean, self.pixel_std,
                                 self.backbone.size_divisibility)

    def postprocess_params(self) -> Dict[str, float]:
        """Keyword arguments of ``cell_detections`` besides the arrays and sizes."""
        raise NotImplementedError

    def detections(self, image_cells: Iterable[Sequence[np.ndarray]], images: ImageList,
                   batched_inputs: List[Dict]) -> List[Dict[str, Instances]]:
        """``[{"instances": Instances}]`` in original-image pixels from each image's candidate
        arrays (``cell_detections``' inputs, in the order of ``batched_inputs``), through the
        NumPy post-processor that exported models run too."""
        results = []
        for cells, inputs, image_size in zip(image_cells, batched_inputs, images.image_sizes):
            original = (inputs.get("height", image_size[0]), inputs.get("width", image_size[1]))
            found = cell_detections(*cells, image_size=tuple(image_size),
                                    original_size=original, **self.postprocess_params())
            results.append({"instances": detections_to_instances(*found, original_size=original,
                                                                 device=self.device)})
        return results
