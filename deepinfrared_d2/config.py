"""DeepInfrared-D2 configs: the keys every model shares, and ``get_cfg`` for any project.

A model project registers its config adder under its meta-architecture name::

    @register_config_adder("OSCAR")
    def add_oscar_config(cfg): ...          # adds the project's keys, nothing else

and its YAML names the package(s) that register the model (``IMPORTS: ["oscar"]``). Then
``get_cfg(config_file, opts)`` imports those packages, adds the shared keys and the adder of
the YAML's ``MODEL.META_ARCHITECTURE``, and merges the file and the ``KEY VALUE`` overrides:
the tools (train_net, demo, benchmarks) build any project's model without naming it.
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Optional, Sequence

import torch
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg as d2_get_cfg
from detectron2.modeling import META_ARCH_REGISTRY

from .evaluation.pd_fa import PD_FA_SCORE_THRESHOLD

__all__ = ["add_deepinfrared_config", "get_cfg", "register_config_adder", "resolve_device"]

_CONFIG_ADDERS: Dict[str, Callable[[CN], None]] = {}


def register_config_adder(meta_architecture: str):
    """Decorator: ``fn(cfg)`` adds the keys of the model registered as ``meta_architecture``
    in ``META_ARCH_REGISTRY``; ``get_cfg`` calls it for configs of that model."""

    def deco(fn: Callable[[CN], None]) -> Callable[[CN], None]:
        if _CONFIG_ADDERS.get(meta_architecture, fn) is not fn:
            raise ValueError(f"a config adder for {meta_architecture!r} is already registered")
        _CONFIG_ADDERS[meta_architecture] = fn
        return fn

    return deco


def add_deepinfrared_config(cfg: CN) -> None:
    """Add the keys shared by every model: imports, NoCo mapper, shared backbones, solver,
    test options."""
    from .data.mapper import add_noco_mapper_config  # SIRSTTrainer's mapper reads them
    from .modeling import add_backbone_config  # importing it registers the shared backbones

    cfg.IMPORTS = []  # Python packages imported before the model is built (they register it)
    add_noco_mapper_config(cfg)
    add_backbone_config(cfg)
    s = cfg.SOLVER
    s.OPTIMIZER = "SGD"  # "SGD" (Detectron2's default builder) or "AdamW"
    # (SOLVER.CLIP_GRADIENTS.CLIP_TYPE also accepts "full_model": one L2 norm over all
    # parameters, mmcv's grad_clip, besides Detectron2's per-parameter "value" / "norm".)
    s.BETAS = (0.9, 0.999)  # AdamW betas
    s.EPS = 1e-8  # AdamW epsilon
    # "WarmupMultiStepLR" / "WarmupCosineLR" (Detectron2), "EpochPolyWarmup": a poly decay
    # that is constant within each epoch of EPOCH_ITERS iterations, times a linear warmup
    # over the first WARMUP_ITERS iterations (mmcv's by_epoch poly + per-iteration warmup), or
    # "MultiStepWarmup": GAMMA at each of STEPS times a warmup (WARMUP_METHOD) that multiplies
    # the stepped value (mmcv; Detectron2's warmup ignores a step taken during it).
    s.EPOCH_ITERS = 0  # iterations per epoch; 0 = MAX_ITER (one epoch)
    s.POLY_POWER = 1.0  # exponent of the poly decay
    s.POLY_MIN_LR = 0.0  # the poly decay's final learning rate
    # Best-checkpoint selection on an evaluation metric. Selecting on a split whose name
    # contains "test" is refused: select on a validation split (e.g. sirst_v2_val_full).
    s.BEST_CHECKPOINT = CN()
    s.BEST_CHECKPOINT.ENABLED = False  # keep model_best.pth by METRIC
    s.BEST_CHECKPOINT.METRIC = "noco/mNoCoAP"  # "<task>/<metric>" of the evaluator's output
    s.BEST_CHECKPOINT.MODE = "max"  # "max" or "min"
    cfg.TEST.SCORE_THRESHOLD_PD_FA = PD_FA_SCORE_THRESHOLD  # score threshold of Pd/Fa
    # Run the network under autocast when testing (float16 on GPU; on a CPU see CPU_AMP_DTYPE);
    # post-processing stays float32. The paper's numbers were evaluated under float16 autocast
    # (OSCAR spec 7.4).
    cfg.TEST.AMP = CN()
    cfg.TEST.AMP.ENABLED = False  # autocast in the test loop
    # What SOLVER.AMP / TEST.AMP mean on a CPU: "auto" = bfloat16 autocast where the CPU computes
    # bfloat16 natively (AVX512-BF16, AMX), float32 elsewhere; "bfloat16" or "float32" force it.
    cfg.MODEL.CPU_AMP_DTYPE = "auto"
    # Keep weights (hence activations) in channels_last (NHWC), oneDNN's preferred CPU layout
    # (tools/benchmark_train_step.py and benchmark_models.py measure the gain).
    cfg.MODEL.CHANNELS_LAST = False


def _import_packages(names: Sequence[str], source: str) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f"{source}: IMPORTS names {name!r}, which cannot be imported "
                              f"({e})") from e


def get_cfg(config_file: Optional[str] = None, opts: Sequence[str] = ()) -> CN:
    """Detectron2's defaults + the shared keys + the model's keys, merged with ``config_file``
    and the ``KEY VALUE`` list ``opts``; returned unfrozen.

    The model's adder is found by ``MODEL.META_ARCHITECTURE`` (from ``opts``, else the YAML
    and its ``_BASE_`` files) after importing the packages the YAML lists in ``IMPORTS``.
    Detectron2's own meta-architectures (GeneralizedRCNN, RetinaNet, ...) need no adder.
    A bad file or override (unknown key, wrong type, unimportable package) raises
    ``ValueError`` naming the config and the overrides.
    """
    opts = list(opts)
    try:
        return _build_cfg(config_file, opts)
    except (KeyError, AssertionError, TypeError, ImportError) as e:  # yacs' own errors
        raise ValueError(f"config {config_file} {' '.join(opts)}: "
                         f"{e.args[0] if e.args else e}") from None


def _build_cfg(config_file: Optional[str], opts: List[str]) -> CN:
    cfg = d2_get_cfg()
    add_deepinfrared_config(cfg)
    if config_file:
        raw = CN.load_yaml_with_base(config_file, allow_unsafe=True)
        _import_packages(raw.get("IMPORTS", []) or [], config_file)
        arch = (raw.get("MODEL") or {}).get("META_ARCHITECTURE", cfg.MODEL.META_ARCHITECTURE)
    else:
        arch = cfg.MODEL.META_ARCHITECTURE
    arch = dict(zip(opts[0::2], opts[1::2])).get("MODEL.META_ARCHITECTURE", arch)
    if arch not in META_ARCH_REGISTRY:
        raise ValueError(f"{config_file or 'config'}: MODEL.META_ARCHITECTURE {arch!r} is not "
                         "registered; name the package that registers it in the config's "
                         "IMPORTS (e.g. IMPORTS: [\"oscar\"])")
    if arch in _CONFIG_ADDERS:
        _CONFIG_ADDERS[arch](cfg)
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(opts)
    return cfg


def resolve_device(cfg: CN) -> Optional[str]:
    """Make a CUDA ``MODEL.DEVICE`` ``cpu`` on a machine without CUDA (``cfg`` unfrozen).

    Returns the warning to log (None when nothing changed): the caller logs it once its
    logger is set up, so that it lands in the run's log file.
    """
    if not (cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available()):
        return None
    device, cfg.MODEL.DEVICE = cfg.MODEL.DEVICE, "cpu"
    return (f"MODEL.DEVICE is {device!r} but CUDA is not available: running on the CPU "
            "(SOLVER.AMP.ENABLED then means bfloat16 autocast where the CPU has it natively, "
            "see MODEL.CPU_AMP_DTYPE)")
