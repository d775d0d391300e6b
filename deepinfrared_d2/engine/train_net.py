"""The body of ``tools/train_net.py`` (and of every project's ``train_net.py``): train or
evaluate any registered model; see that script for the command line."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.evaluation import verify_results
from detectron2.utils import comm

from .defaults import setup_cfg
from .launch import launch
from .trainer import SIRSTTrainer, TrainingDiverged

__all__ = ["main", "run"]


def main(args: argparse.Namespace) -> Dict:
    """One process: train (``--resume`` continues) or, with ``--eval-only``, evaluate
    ``MODEL.WEIGHTS``. Returns the metrics of the last evaluation."""
    import deepinfrared_d2  # noqa: F401  (registers the SIRST datasets in spawned workers)

    cfg = setup_cfg(args)
    if args.eval_only:
        weights = cfg.MODEL.WEIGHTS
        if not args.resume and not (weights and os.path.isfile(weights)):
            raise FileNotFoundError("--eval-only needs MODEL.WEIGHTS pointing at a checkpoint "
                                    f"file; got {weights!r}" + (" (no such file)" if weights
                                                                 else ""))
        model = SIRSTTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume)
        metrics = SIRSTTrainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, metrics)
        return metrics
    trainer = SIRSTTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def run(args: argparse.Namespace) -> int:
    """``main`` in ``args.num_gpus`` processes (gloo on CPUs); the exit code: 0, 2 for a
    missing file, 3 for a diverged run."""
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
