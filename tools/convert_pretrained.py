#!/usr/bin/env python3
"""Convert a ResNet / OSCAR checkpoint on disk into Detectron2 model keys.

    python tools/convert_pretrained.py resnet18.pth out/r18_flex.pkl            # torchvision
    python tools/convert_pretrained.py resnet18.pth out/r18_flex.pkl --no-deep-stem
    python tools/convert_pretrained.py oscar_mmdet_epoch_9.pth out/oscar.pth   # reference
    python tools/convert_pretrained.py resnet50.pth out/r50_d2.pkl --target detectron2

``--target flex`` (default): FlexResNet (OSCAR, the CPU recipes); ``--target detectron2``:
Detectron2's ResNet (``MODEL.BACKBONE.NAME`` ``build_resnet_flex_fpn_backbone``, the R50
paper configs of Faster R-CNN / RetinaNet; torchvision weights are pytorch style, so
``MODEL.RESNETS.STRIDE_IN_1X1 False``), keys ``backbone.bottom_up.{stem.conv1, res2..res5}``.

Sources (``--source auto`` decides from the keys):
- torchvision ResNet state dict (``resnet18-*.pth``): ``layer1..layer4`` map one to one to
  ``backbone.bottom_up.layer*``; the single 7x7 ``conv1``/``bn1`` stem maps to ``stem.0`` /
  ``stem.1`` only with ``--no-deep-stem`` (``MODEL.FLEX_RESNET.DEEP_STEM False``). With the deep
  stem (the paper's setting) there is no counterpart: the deep stem stays randomly initialised,
  as do the FPN and the head. ``fc.*`` is dropped.
- a reference mmdet OSCAR checkpoint (``state_dict`` with ``backbone.``/``neck.``/
  ``bbox_head.`` keys, spec 4.5): every key maps (``neck.*_convs.I.conv.*`` lose ``.conv``).

Output: ``.pkl`` (Detectron2 format: numpy arrays under "model", ``matching_heuristics``
off) or ``.pth`` (``{"model": state_dict}``); load it with ``MODEL.WEIGHTS``. Nothing is
downloaded.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys

import torch

from deepinfrared_d2.engine.checkpoint import CheckpointError, load_checkpoint_file
from deepinfrared_d2.modeling.convert import convert_torchvision_to_d2_resnet
from oscar.convert import convert_mmdet_oscar, convert_torchvision_resnet, detect_source
from sirst.cli import ArgumentParser, fail, output_file


def load_state_dict(path: str):
    """State dict of a checkpoint file (raw, or under "state_dict" / "model")."""
    try:
        ckpt = load_checkpoint_file(path)
    except CheckpointError as e:
        fail(str(e))
    for key in ("state_dict", "model"):
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            ckpt = ckpt[key]
            break
    if not isinstance(ckpt, dict) or not all(torch.is_tensor(v) for v in ckpt.values()):
        fail(f"{path} does not hold a state dict of tensors")
    return ckpt


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="checkpoint on disk (.pth)")
    parser.add_argument("output", type=output_file, help="converted checkpoint (.pkl or .pth)")
    parser.add_argument("--source", choices=("auto", "torchvision", "mmdet"), default="auto")
    parser.add_argument("--target", choices=("flex", "detectron2"), default="flex",
                        help="backbone of the target model: FlexResNet or Detectron2's ResNet")
    parser.add_argument("--no-deep-stem", dest="deep_stem", action="store_false",
                        help="the target model uses the 7x7 stem (DEEP_STEM False)")
    args = parser.parse_args(argv)

    state = load_state_dict(args.input)
    source = detect_source(state) if args.source == "auto" else args.source
    if source == "torchvision" and args.target == "detectron2":
        converted, skipped = convert_torchvision_to_d2_resnet(state)
    elif source == "torchvision":
        converted, skipped = convert_torchvision_resnet(state, deep_stem=args.deep_stem)
    else:
        converted, skipped = convert_mmdet_oscar(state)
    if not converted:
        fail(f"no key of {args.input} maps to a model key ({source} source)")

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    if args.output.endswith(".pkl"):
        blob = {"model": {k: v.numpy() for k, v in converted.items()},
                "__author__": "deepinfrared_d2 convert_pretrained", "matching_heuristics": False}
        with open(args.output, "wb") as f:
            pickle.dump(blob, f)
    else:
        torch.save({"model": converted}, args.output)
    print(f"{source}: converted {len(converted)} tensors -> {args.output}")
    if skipped:
        print(f"not converted ({len(skipped)}): {', '.join(skipped)}")
    if source == "torchvision" and args.target == "flex" and args.deep_stem:
        print("note: the deep stem (backbone.bottom_up.stem.*), the FPN and the head keep their "
              "random initialisation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
