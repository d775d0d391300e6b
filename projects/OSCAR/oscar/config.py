"""OSCAR config keys (``add_oscar_config``), with the defaults of the paper's R18 256 model.

Every hyper-parameter of the architecture, the label assignment, the losses and inference
lives here (OSCAR spec sections 4-7); the code reads them from the config only.
"""
import logging
from typing import Sequence

import torch
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg

from deepinfrared_d2.config import add_deepinfrared_config
from deepinfrared_d2.data.mapper import add_noco_mapper_config

# SIRST-V2 statistics (spec 1.5): the same mean/std for every channel.
SIRST_V2_PIXEL_MEAN = [111.89, 111.89, 111.89]
SIRST_V2_PIXEL_STD = [27.62, 27.62, 27.62]


def add_oscar_config(cfg: CN) -> None:
    """Add the OSCAR keys (and the shared DeepInfrared-D2 / NoCo-mapper keys) to ``cfg``.

    Idempotent: calling it twice leaves the config unchanged.
    """
    add_deepinfrared_config(cfg)
    add_noco_mapper_config(cfg)
    if hasattr(cfg.MODEL, "OSCAR"):
        return

    cfg.MODEL.META_ARCHITECTURE = "OSCAR"
    cfg.MODEL.BACKBONE.NAME = "build_flex_resnet_fpn_backbone"
    cfg.MODEL.PIXEL_MEAN = list(SIRST_V2_PIXEL_MEAN)
    cfg.MODEL.PIXEL_STD = list(SIRST_V2_PIXEL_STD)
    cfg.INPUT.FORMAT = "RGB"  # images are decoded BGR and handed to the model as RGB (spec 1.5)

    # ---- backbone: FlexResNet (spec 4.1) ----
    r = cfg.MODEL.FLEX_RESNET = CN()
    r.DEPTH = 18  # 18 / 34 (BasicBlock) or 50 / 101 / 152 (Bottleneck)
    r.DEEP_STEM = True  # three 3x3 convs (3 -> STEM_CHANNELS/2 -> STEM_CHANNELS/2 -> STEM_CHANNELS)
    r.STEM_CHANNELS = 64
    r.STEM_STRIDE = 2  # stride of the first stem conv
    r.MAX_POOLING = True  # 3x3 stride-2 max-pool after the stem
    r.STAGE_STRIDES = [1, 2, 2, 2]  # first-block stride of layer1..layer4
    r.BASE_CHANNELS = 64  # width of layer1 (doubles every stage)
    r.NORM = "BN"  # trainable BN with batch statistics ("SyncBN" for multi-GPU)
    r.ZERO_INIT_RESIDUAL = True  # last BN of every residual block starts at weight 0, bias 0
    r.OUT_FEATURES = ["res2", "res3", "res4", "res5"]

    # ---- neck: FlexFPN (spec 4.2) ----
    f = cfg.MODEL.FLEX_FPN = CN()
    f.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    f.OUT_CHANNELS = 256  # C
    f.OUT_INDS = [0, 1]  # indices into IN_FEATURES that get an output conv: (P2, P3)
    # Build the 3x3 output convs of the levels not in OUT_INDS too (never used; they only make
    # the parameter count and the checkpoint keys match the reference, spec 4.4/4.5).
    f.BUILD_UNUSED_OUTPUT_CONVS = True

    # ---- head, assignment, losses, inference (spec 4.3, 5.1, 6.2, 7.2) ----
    o = cfg.MODEL.OSCAR = CN()
    o.NUM_CLASSES = 1
    o.IN_FEATURES = ["p2", "p3"]  # (refine, coarse) FPN outputs
    o.STRIDES = [4, 8]  # (s_r, s_c); checked against the backbone's output strides
    o.FEAT_CHANNELS = 128  # F; must equal OUT_CHANNELS // 2 (refine reg tower input C + F)
    o.STACKED_CONVS = 4
    o.NORM = "GN"
    o.GN_GROUPS = 32
    o.HEAD_INIT_STD = 0.01  # N(0, std^2) for every head conv, bias 0
    o.SCALE_INIT = 1.0  # learnable scalars on the refine / coarse regression outputs
    # Pseudo-box side lengths: coarse L = s_c * COARSE_SIDE_RATIO, refine L = s_r * STRIDE_RATIO.
    o.STRIDE_RATIO = 1.5
    o.COARSE_SIDE_RATIO = 1.0

    o.FOCAL_LOSS_GAMMA = 3.0
    o.FOCAL_LOSS_ALPHA = 0.25
    o.COARSE_CLS_WEIGHT = 2.0
    o.REFINE_CLS_WEIGHT = 2.0
    o.COARSE_BBOX_WEIGHT = 1.0
    o.REFINE_BBOX_WEIGHT = 1.0
    o.DIOU_EPS = 1e-6
    o.NOCO_LOSS_BETA = 2.0
    o.NOCO_LOSS_WEIGHT = 1000.0

    o.TEST_SCORE_THRESH = 0.05  # on the refine probability only (candidate selection)
    o.TEST_NMS_PRE = 1000
    o.TEST_NMS_THRESH = 0.5
    o.TEST_MAX_PER_IMAGE = 100


def get_oscar_cfg(config_file: str, opts: Sequence[str] = ()) -> CN:
    """Detectron2's default config + the OSCAR keys, merged with a YAML file and ``KEY VALUE`` opts.

    On a machine without CUDA a ``cuda`` ``MODEL.DEVICE`` falls back to ``cpu`` (with a warning),
    so the GPU configs run anywhere. The config is returned unfrozen.
    """
    cfg = get_cfg()
    add_oscar_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger(__name__).warning(
            "CUDA is not available: using MODEL.DEVICE=cpu (SOLVER.AMP.ENABLED then means "
            "bfloat16 autocast)")
        cfg.MODEL.DEVICE = "cpu"
    return cfg
