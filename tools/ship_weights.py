#!/usr/bin/env python3
"""Keep a training checkpoint's model weights alone, in float16, for shipping in the repo.

    python tools/ship_weights.py output/oscar_R18_FPN_P2_cpu/model_final.pth \
        projects/OSCAR/model_zoo/oscar_R18_FPN_P2_cpu/model_final_fp16.pth

Optimizer, scheduler and iteration are dropped; floating-point tensors are rounded to float16
(half the bytes of float32) and loaded back into float32 models as usual (``MODEL.WEIGHTS``).
Prints the size and the largest rounding error, relative to each tensor's largest value.
"""
from __future__ import annotations

import os
import sys

import torch

from deepinfrared_d2.engine.checkpoint import CheckpointError, load_checkpoint_file
from sirst.cli import ArgumentParser, fail, input_file, output_file


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=input_file, help="a checkpoint written by training")
    ap.add_argument("output", type=output_file, help="the .pth file to write")
    args = ap.parse_args(argv)
    try:
        ckpt = load_checkpoint_file(args.checkpoint)
    except CheckpointError as e:
        fail(str(e))
    model = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(model, dict) or not all(torch.is_tensor(v) for v in model.values()):
        fail(f"{args.checkpoint}: no 'model' state dict of tensors in it")
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.items()}
    worst = max(((half[k].float() - v.float()).abs().max() / v.abs().max().clamp_min(1e-12)).item()
                for k, v in model.items() if v.is_floating_point() and v.numel())
    torch.save({"model": half}, args.output)
    print(f"{args.output}: {len(half)} tensors, {os.path.getsize(args.output) / 2**20:.1f} MiB, "
          f"largest float16 rounding error {worst:.1e} of a tensor's largest value")
    return 0


if __name__ == "__main__":
    sys.exit(main())
