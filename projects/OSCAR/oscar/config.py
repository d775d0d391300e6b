"""OSCAR config keys (``add_oscar_config``), with the defaults of the paper's R18 256 model.

Every hyper-parameter of the architecture, the label assignment, the losses and inference
lives here (OSCAR spec sections 4.3-7) or, for the shared FlexResNet + FlexFPN backbone (spec
4.1, 4.2), in ``deepinfrared_d2.modeling.config``; the code reads them from the config only.
The values of existing Detectron2 keys (meta-architecture, backbone name, pixel statistics,
input format) are set by ``configs/Base-OSCAR.yaml``.
"""
from detectron2.config import CfgNode as CN

from deepinfrared_d2.config import register_config_adder


@register_config_adder("OSCAR")
def add_oscar_config(cfg: CN) -> None:
    """Add the OSCAR keys to ``cfg`` (``deepinfrared_d2.config.get_cfg`` calls it for configs
    whose ``MODEL.META_ARCHITECTURE`` is "OSCAR")."""
    # ---- head, assignment, losses, inference (spec 4.3, 5.1, 6.2, 7.2) ----
    o = cfg.MODEL.OSCAR = CN()
    o.NUM_CLASSES = 1  # foreground classes (SIRST-V2: "Target")
    o.IN_FEATURES = ["p2", "p3"]  # (refine, coarse) FPN outputs
    o.STRIDES = [4, 8]  # (s_r, s_c); checked against the backbone's output strides
    o.FEAT_CHANNELS = 128  # F; must equal OUT_CHANNELS // 2 (refine reg tower input C + F)
    o.STACKED_CONVS = 4  # 3x3 convs in every head tower
    o.NORM = "GN"  # normalisation of the head towers
    o.GN_GROUPS = 32  # GroupNorm groups of the head towers
    o.HEAD_INIT_STD = 0.01  # N(0, std^2) for every head conv, bias 0
    o.SCALE_INIT = 1.0  # learnable scalars on the refine / coarse regression outputs
    # Pseudo-box side lengths: coarse L = s_c * COARSE_SIDE_RATIO, refine L = s_r * STRIDE_RATIO.
    o.STRIDE_RATIO = 1.5
    o.COARSE_SIDE_RATIO = 1.0

    o.FOCAL_LOSS_GAMMA = 3.0  # focal loss focusing exponent (spec 6.2)
    o.FOCAL_LOSS_ALPHA = 0.25  # focal loss positive weight
    o.COARSE_CLS_WEIGHT = 2.0  # loss weights of the coarse / refine classification
    o.REFINE_CLS_WEIGHT = 2.0
    o.COARSE_BBOX_WEIGHT = 1.0  # loss weights of the coarse / refine DIoU regression
    o.REFINE_BBOX_WEIGHT = 1.0
    o.DIOU_EPS = 1e-6  # added to the DIoU union and enclosing diagonal
    o.NOCO_LOSS_BETA = 2.0  # exponent of the NoCo regression loss (spec 6.2)
    o.NOCO_LOSS_WEIGHT = 1000.0  # weight of the NoCo regression loss

    o.TEST_SCORE_THRESH = 0.05  # on the refine probability only (candidate selection)
    o.TEST_NMS_PRE = 1000  # best candidates kept before NMS
    o.TEST_NMS_THRESH = 0.5  # IoU threshold of NMS
    o.TEST_MAX_PER_IMAGE = 100  # detections kept per image
