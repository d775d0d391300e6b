"""Export a trained detector to ONNX: pixel normalisation, padding, the dense network and the
per-cell box decoding in the graph (for Faster R-CNN also its proposals and RoI stage); the
final selection and NMS stay in NumPy (``cell_detections``).

A model can be exported when it provides ``export_forward(images, image_size) -> (boxes,
select_prob, score_factor)`` on a normalised, padded image (1, 3, H, W) whose unpadded size is
``image_size`` ((2,) int64 tensor (h, w)), ``postprocess_params()`` (the keyword arguments of
``cell_detections``), ``pixel_mean``/``pixel_std`` buffers and ``backbone.size_divisibility``
(OSCAR and FCOS do; Detectron2's RetinaNet and Faster R-CNN get them from the adapters in
``detectron2_export``). The graph takes one
image (1, 3, H, W) float32 of raw pixel values (0-255) in ``INPUT.FORMAT`` order at the
network input size (after the test-time resize), any H and W; the test-time resize, the
channel order and the post-processing parameters are stored in the file's metadata
(``METADATA_KEY``), so ``OnnxDetector`` needs nothing else.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ExportGraph", "exportable", "export_onnx", "export_metadata", "METADATA_KEY",
           "OUTPUT_NAMES"]

METADATA_KEY = "deepinfrared_d2"
OUTPUT_NAMES = ("boxes", "select_prob", "score_factor")
OPSET = 18


def exportable(model: nn.Module) -> nn.Module:
    """``model`` itself when it has the export interface (see the module doc), an adapter
    for Detectron2's RetinaNet and Faster R-CNN (``detectron2_export``); ``TypeError`` naming
    what it lacks otherwise."""
    from detectron2.modeling.meta_arch.rcnn import GeneralizedRCNN
    from detectron2.modeling.meta_arch.retinanet import RetinaNet

    from .detectron2_export import RCNNExport, RetinaNetExport

    if isinstance(model, RetinaNet):
        return RetinaNetExport(model)
    if isinstance(model, GeneralizedRCNN):
        return RCNNExport(model)
    for attr in ("export_forward", "postprocess_params", "pixel_mean", "pixel_std"):
        if not hasattr(model, attr):
            raise TypeError(f"{type(model).__name__} cannot be exported to ONNX: it has no "
                            f"{attr!r} (see deepinfrared_d2.deploy.onnx_export)")
    return model


class ExportGraph(nn.Module):
    """Raw image (1, 3, H, W) -> normalise -> zero-pad to the size divisibility ->
    ``model.export_forward`` (with the unpadded size): boxes (1, 4, h, w), select_prob (1, K, h, w),
    score_factor (1, K, h, w) per output cell."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = exportable(model)
        self.divisibility = max(int(getattr(self.model.backbone, "size_divisibility", 1)), 1)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = (image - self.model.pixel_mean) / self.model.pixel_std
        h, w = x.shape[-2:]
        d = self.divisibility
        x = F.pad(x, (0, (d - w % d) % d, 0, (d - h % d) % d), value=0.0)
        return tuple(self.model.export_forward(x, torch._shape_as_tensor(image)[2:]))


def export_metadata(cfg, model: nn.Module) -> Dict:
    """What ``OnnxDetector`` needs besides the graph: pre- and post-processing settings."""
    return {
        "version": 1,
        "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
        "input_format": cfg.INPUT.FORMAT,
        "resize_mode": cfg.INPUT.RESIZE_MODE_TEST,
        "keep_ratio_scale": [float(v) for v in cfg.INPUT.KEEP_RATIO_SCALE],
        "postprocess": "cell_detections",
        "postprocess_params": model.postprocess_params(),
        "outputs": list(OUTPUT_NAMES),
        "weights": os.path.basename(cfg.MODEL.WEIGHTS) if cfg.MODEL.WEIGHTS else "",
        "torch": torch.__version__,
    }


def export_onnx(cfg, model: nn.Module, path: str, sample_size: Tuple[int, int] = (512, 640)) -> str:
    """Write ``model`` (eval mode, on CPU, float32) as an ONNX file with dynamic H, W.

    sample_size: (H, W) of the tracing input (any size works at run time). Returns ``path``.
    """
    import onnx

    graph = ExportGraph(model.float().cpu()).eval()  # export restores the wrapper's mode
    sample = torch.zeros((1, 3) + tuple(int(s) for s in sample_size))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (sample,), path, input_names=["image"],
                          output_names=list(OUTPUT_NAMES), opset_version=OPSET, dynamo=False,
                          dynamic_axes={"image": {2: "height", 3: "width"},
                                        **{n: {2: "cells_h", 3: "cells_w"} for n in OUTPUT_NAMES}})
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(export_metadata(cfg, graph.model))
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return path
