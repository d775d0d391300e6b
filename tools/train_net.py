#!/usr/bin/env python3
"""Train or evaluate OSCAR (and other DeepInfrared-D2 models) with Detectron2.

Examples::

    python tools/train_net.py --config-file configs/OSCAR/oscar_R18_FPN_P2_cpu.yaml
    python tools/train_net.py --config-file CFG --resume              # continue a run
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS out/model_final.pth
    python tools/train_net.py --config-file CFG --num-gpus 2          # 2 processes (gloo on CPU)

Trailing ``KEY VALUE`` pairs override the config. On a machine without CUDA,
``MODEL.DEVICE`` falls back to "cpu" and ``--num-gpus N`` starts N CPU processes.
"""
from __future__ import annotations

import os
import sys

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, default_setup
from detectron2.evaluation import verify_results
from detectron2.utils import comm

import deepinfrared_d2  # noqa: F401  (registers the SIRST datasets)
from deepinfrared_d2.engine import SIRSTTrainer, TrainingDiverged, launch
from oscar import get_oscar_cfg


def setup(args):
    """Build the frozen config from ``--config-file`` and the trailing overrides."""
    cfg = get_oscar_cfg(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        weights = cfg.MODEL.WEIGHTS
        if not args.resume and not (weights and os.path.isfile(weights)):
            raise FileNotFoundError(f"--eval-only needs MODEL.WEIGHTS pointing at a checkpoint file; "
                                    f"got {weights!r}" + (" (no such file)" if weights else ""))
        model = SIRSTTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume)
        results = SIRSTTrainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
        return results
    trainer = SIRSTTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def run(args) -> int:
    try:
        launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
               dist_url=args.dist_url, args=(args,))
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    parsed = default_argument_parser().parse_args()
    print("Command Line Args:", parsed)
    sys.exit(run(parsed))
