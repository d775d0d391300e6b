"""A trained detector ready for inference, and its detections on a registered dataset."""
from __future__ import annotations

import os
import time
from typing import Dict, List, Tuple

import numpy as np
import torch
from detectron2.config import CfgNode
from tqdm import tqdm

from sirst.results import detections_to_records

from .checkpoint import SIRSTCheckpointer
from .trainer import SIRSTTrainer, with_test_precision

__all__ = ["build_predictor", "load_trained_model", "predict_dataset"]


def load_trained_model(cfg: CfgNode) -> torch.nn.Module:
    """The config's model in eval mode with ``MODEL.WEIGHTS`` loaded, every weight required.
    Raises ``FileNotFoundError`` without weights, ``CheckpointError`` for unfit ones."""
    weights = cfg.MODEL.WEIGHTS
    if not (weights and os.path.isfile(weights)):
        raise FileNotFoundError("MODEL.WEIGHTS must point at a trained checkpoint; got "
                                f"{weights!r}" + (" (no such file)" if weights else ""))
    model = SIRSTTrainer.build_model(cfg)
    SIRSTCheckpointer(model, require_all=True).load(weights)
    return model.eval()


def build_predictor(cfg: CfgNode) -> torch.nn.Module:
    """``load_trained_model``, autocast-wrapped when ``TEST.AMP.ENABLED`` resolves to a
    reduced precision here."""
    return with_test_precision(cfg, load_trained_model(cfg))


def predict_dataset(cfg: CfgNode, model: torch.nn.Module, dataset_name: str,
                    progress: bool = True) -> Tuple[List[Dict], np.ndarray]:
    """Run ``model`` on every image of ``dataset_name`` through the config's test loader
    (native resolution for the CPU recipes). Returns the results records (original-image
    pixels, dataset order) and the seconds each image took in the model (float64 (n,))."""
    from deepinfrared_d2.evaluation.evaluator import instances_to_detections

    loader = SIRSTTrainer.build_test_loader(cfg, dataset_name)
    records: List[Dict] = []
    seconds = []
    with torch.no_grad():
        for inputs in tqdm(loader, total=len(loader), unit="image",
                           desc=f"{cfg.MODEL.META_ARCHITECTURE} on {dataset_name}",
                           disable=not progress):
            t0 = time.perf_counter()
            outputs = model(inputs)
            seconds.append(time.perf_counter() - t0)
            for inp, out in zip(inputs, outputs):
                d = instances_to_detections(out["instances"])
                records += detections_to_records(str(inp["image_id"]), d.scores, d.boxes,
                                                 d.points)
    return records, np.asarray(seconds)
