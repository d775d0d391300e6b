"""Training options shared by every DeepInfrared-D2 model (optimizer, LR schedule, selection).

``add_deepinfrared_config(cfg)`` adds the keys below to a Detectron2 ``CfgNode``; model
projects (e.g. ``oscar.add_oscar_config``) call it and add their own keys.
"""
from detectron2.config import CfgNode as CN


def add_deepinfrared_config(cfg: CN) -> None:
    """Add the shared solver/test keys and the NoCo mapper's INPUT keys (idempotent)."""
    from .data.mapper import add_noco_mapper_config  # SIRSTTrainer's mapper reads them

    add_noco_mapper_config(cfg)
    if hasattr(cfg.SOLVER, "OPTIMIZER"):
        return
    s = cfg.SOLVER
    s.OPTIMIZER = "SGD"  # "SGD" (Detectron2's default builder) or "AdamW"
    s.BETAS = (0.9, 0.999)  # AdamW betas
    s.EPS = 1e-8  # AdamW epsilon
    # "WarmupMultiStepLR" / "WarmupCosineLR" (Detectron2) or "EpochPolyWarmup": a poly decay
    # that is constant within each epoch of EPOCH_ITERS iterations, times a linear warmup
    # over the first WARMUP_ITERS iterations (mmcv's by_epoch poly + per-iteration warmup).
    s.EPOCH_ITERS = 0  # iterations per epoch; 0 = MAX_ITER (one epoch)
    s.POLY_POWER = 1.0
    s.POLY_MIN_LR = 0.0
    # Best-checkpoint selection on an evaluation metric. Selecting on a split whose name
    # contains "test" is refused: select on a validation split (e.g. sirst_v2_val_full).
    s.BEST_CHECKPOINT = CN()
    s.BEST_CHECKPOINT.ENABLED = False
    s.BEST_CHECKPOINT.METRIC = "noco/mNoCoAP"
    s.BEST_CHECKPOINT.MODE = "max"
    # Evaluator score threshold for the IRSTD Pd/Fa figures.
    cfg.TEST.SCORE_THRESHOLD_PD_FA = 0.5
    # Run the network under autocast when testing (float16 on GPU, bfloat16 on CPU, about 2x
    # faster there); post-processing stays float32. The paper's numbers were evaluated under
    # float16 autocast (OSCAR spec 7.4).
    cfg.TEST.AMP = CN()
    cfg.TEST.AMP.ENABLED = False
