"""Static int8 quantization of an exported detector (``tools/export_model.py --int8``), with
ONNX Runtime's quantization tool.

    quantize_int8("out/oscar_cpu.onnx", "out/oscar_cpu.int8.onnx", calibration_bgr_images)

Every convolution but the output ones (the predictors: class logits, box deltas, NoCo) runs in
int8 (QDQ format, weights per output channel, activations uint8 with min-max ranges from the
calibration images); normalisation layers, decoding and the predictors stay float32, so
scores keep float resolution (8-bit logits would create exact score ties, which the metric
then orders arbitrarily). Weights use 7 of their 8 bits (``reduce_range``): on CPUs without
VNNI (AVX2, AVX-512 before Cascade Lake) ONNX Runtime multiplies uint8 x int8 with
VPMADDUBSW, whose 16-bit pair sums saturate for full-range weights; with 7-bit weights they
cannot (2 x 255 x 64 < 2^15): the integer sums are exact with or without VNNI. The file
keeps the export's metadata (``OnnxDetector`` runs it as is) and records the quantization in
it.
"""
from __future__ import annotations

import itertools
import json
import os
import tempfile
from typing import Iterable, List

import numpy as np

from .onnx_export import METADATA_KEY
from .onnx_runtime import OnnxDetector

__all__ = ["output_convs", "quantize_int8"]


def output_convs(model) -> List[str]:
    """Names of the Conv nodes of an ONNX ``ModelProto`` from which a graph output is reached
    without passing through another Conv (the predictors)."""
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        stack, seen, last = list(node.output), set(), True
        while stack and last:
            tensor = stack.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            for consumer in consumers.get(tensor, []):
                last = last and consumer.op_type != "Conv"
                stack += consumer.output
        if last:
            found.append(node.name)
    return found


def quantize_int8(src: str, dst: str, images: Iterable[np.ndarray]) -> str:
    """Write the int8 version of the exported detector ``src`` to ``dst``.

    images: calibration images, (H, W, 3) uint8 BGR as read from disk (any sizes; pre-processed
        as ``OnnxDetector`` does). Returns ``dst``; ValueError if ``images`` is empty.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    images = iter(images)
    first = next(images, None)
    if first is None:  # checked before ONNX Runtime fails on it with its own words
        raise ValueError(f"{src}: no calibration images to quantize with")
    detector = OnnxDetector(src, threads=0, spin=False)
    feeds, count = itertools.chain([first], images), 0

    class Reader(CalibrationDataReader):
        def get_next(self):
            nonlocal count
            image = next(feeds, None)
            if image is None:
                return None
            count += 1
            return {"image": detector.preprocess(image)}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(src, prepared, skip_symbolic_shape=True)  # shapes, constant folding
        quantize_static(prepared, dst, Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        op_types_to_quantize=["Conv"],
                        nodes_to_exclude=output_convs(onnx.load(src)))
    proto = onnx.load(dst)
    meta = {p.key: p for p in proto.metadata_props}
    entry = json.loads(meta[METADATA_KEY].value)
    entry["quantization"] = {"int8": "QDQ, per-channel 7-bit weights, uint8 activations",
                             "calibration_images": count, "float_model": os.path.basename(src)}
    meta[METADATA_KEY].value = json.dumps(entry)
    onnx.save(proto, dst)
    return dst
