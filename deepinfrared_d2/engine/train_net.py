"""The body of ``tools/train_net.py`` (and of every project's ``train_net.py``): train or
evaluate any registered model; see that script for the command line."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict

from detectron2.evaluation import verify_results
from detectron2.utils import comm

from ..config import get_cfg
from .checkpoint import CheckpointError, SIRSTCheckpointer
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
        # refuses (exit 2) a checkpoint that leaves any model weight at its random init
        SIRSTCheckpointer(model, save_dir=cfg.OUTPUT_DIR, require_all=True).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume)
        metrics = SIRSTTrainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, metrics)
        return metrics
    trainer = SIRSTTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def check_config(args: argparse.Namespace) -> None:
    """The config file and the overrides, checked before any work (raises ``ValueError``)."""
    if not os.path.isfile(args.config_file):
        raise ValueError(f"--config-file {args.config_file}: no such file")
    get_cfg(args.config_file, args.opts)


def check_eval_weights(args: argparse.Namespace) -> None:
    """``--eval-only`` in several processes: refuse a bad checkpoint before starting them
    (inside them the error would surface as a child process's traceback)."""
    if not args.eval_only or args.resume or args.num_gpus * args.num_machines <= 1:
        return
    cfg = get_cfg(args.config_file, args.opts)
    cfg.MODEL.DEVICE = "cpu"
    SIRSTCheckpointer(SIRSTTrainer.build_model(cfg), require_all=True).load(cfg.MODEL.WEIGHTS)


def run(args: argparse.Namespace) -> int:
    """``main`` in ``args.num_gpus`` processes (gloo on CPUs); the exit code: 0, 2 for a
    bad config, a missing file or a checkpoint that does not fit, 3 for a diverged run."""
    try:  # user errors, before any process starts
        check_config(args)
        check_eval_weights(args)
    except (ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
               dist_url=args.dist_url, args=(args,))
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
