"""Config set-up for the tools: any registered project's config, logged like Detectron2's."""
from __future__ import annotations

import argparse
import logging

from detectron2.config import CfgNode
from detectron2.engine import default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..config import get_cfg, resolve_device

__all__ = ["setup_cfg"]


def setup_cfg(args: argparse.Namespace, output: bool = True) -> CfgNode:
    """The frozen config of ``args.config_file`` + ``args.opts`` (any project, see
    ``deepinfrared_d2.config.get_cfg``).

    With ``output`` (training/evaluation), Detectron2's ``default_setup`` runs too: logs in
    ``OUTPUT_DIR/log.txt`` (the ``deepinfrared_d2`` loggers included), config.yaml saved,
    seeds set. A CUDA device falling back to the CPU is logged as a warning (to stderr
    without ``output``).
    """
    cfg = get_cfg(args.config_file, args.opts)
    fallback = resolve_device(cfg)
    cfg.freeze()
    if output:
        default_setup(cfg, args)
        setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="deepinfrared_d2")
    if fallback:  # without a log set up, Python's last-resort handler prints it to stderr
        logging.getLogger("deepinfrared_d2").warning(fallback)
    return cfg
