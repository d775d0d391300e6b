"""FLOP counting with mmcv's complexity-counter conventions (OSCAR spec 9.2).

The paper's GFLOPs come from mmcv's ``get_flops``, which counts per module:
conv multiply-accumulates plus one per output element for the bias; BN/GN ``2 x`` input
elements (affine); ReLU output elements; max-pool input elements; and nothing for
interpolation, sigmoid, products, concatenation, additions or learnable scales. This module
extends fvcore's ``FlopCountAnalysis`` with handles that follow those rules, so "GFLOPs" here
are really giga multiply-accumulates, as in the paper.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, List, Tuple

import numpy as np
import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import conv_flop_jit, get_shape


def _numel(value) -> int:
    shape = get_shape(value)
    return int(np.prod(shape)) if shape else 0


def _conv_with_bias(inputs: List[Any], outputs: List[Any]) -> Counter:
    flops = conv_flop_jit(inputs, outputs)
    if get_shape(inputs[2]) is not None:  # bias: one add per output element
        flops["conv"] += _numel(outputs[0])
    return flops


def _norm(weight_index: int):
    """BN/GN: input elements, doubled when the norm is affine (weight at ``weight_index``)."""

    def handle(inputs: List[Any], outputs: List[Any]) -> int:
        affine = get_shape(inputs[weight_index]) is not None
        return _numel(inputs[0]) * (2 if affine else 1)

    return handle


def _zero(inputs: List[Any], outputs: List[Any]) -> int:
    return 0


def _output_elements(inputs: List[Any], outputs: List[Any]) -> int:
    return _numel(outputs[0])


def _input_elements(inputs: List[Any], outputs: List[Any]) -> int:
    return _numel(inputs[0])


MMCV_STYLE_HANDLES = {
    "aten::_convolution": _conv_with_bias,
    "aten::batch_norm": _norm(1),
    "aten::group_norm": _norm(2),
    "aten::relu": _output_elements,
    "aten::relu_": _output_elements,
    "aten::max_pool2d": _input_elements,
    "aten::upsample_nearest2d": _zero,
    "aten::upsample_bilinear2d": _zero,
    "aten::_upsample_nearest_exact2d": _zero,
}
_UNCOUNTED = ["aten::sigmoid", "aten::mul", "aten::add", "aten::add_", "aten::cat", "aten::exp",
              "aten::to", "aten::float", "aten::sub", "aten::div"]


def count_gflops(module: torch.nn.Module, inputs: Tuple[Any, ...]) -> float:
    """Giga multiply-accumulates of ``module(*inputs)`` under mmcv's conventions.

    Args:
        module: traced with ``torch.jit.trace`` (pass a wrapper that runs only the dense part,
            e.g. backbone + neck + head, as mmcv's ``forward_dummy`` does).
        inputs: positional inputs, e.g. ``(torch.zeros(1, 3, 512, 512),)``.
    """
    analysis = FlopCountAnalysis(module, inputs)
    analysis.set_op_handle(**MMCV_STYLE_HANDLES)
    analysis.set_op_handle(**{name: None for name in _UNCOUNTED})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analysis.total() / 1e9
