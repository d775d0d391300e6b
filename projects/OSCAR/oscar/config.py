"""OSCAR config keys (``add_oscar_config``), with the defaults of the paper's R18 256 model.

Every hyper-parameter of the architecture, the label assignment, the losses and inference
lives here (OSCAR spec sections 4-7); the code reads them from the config only. The values
of existing Detectron2 keys (meta-architecture, backbone name, pixel statistics, input
format) are set by ``configs/Base-OSCAR.yaml``.
"""
from detectron2.config import CfgNode as CN

from deepinfrared_d2.config import register_config_adder


@register_config_adder("OSCAR")
def add_oscar_config(cfg: CN) -> None:
    """Add the OSCAR keys to ``cfg`` (``deepinfrared_d2.config.get_cfg`` calls it for configs
    whose ``MODEL.META_ARCHITECTURE`` is "OSCAR")."""
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
    r.OUT_FEATURES = ["res2", "res3", "res4", "res5"]  # stages handed to the FPN

    # ---- neck: FlexFPN (spec 4.2) ----
    f = cfg.MODEL.FLEX_FPN = CN()
    f.IN_FEATURES = ["res2", "res3", "res4", "res5"]  # backbone outputs the FPN merges
    f.OUT_CHANNELS = 256  # C
    f.OUT_INDS = [0, 1]  # indices into IN_FEATURES that get an output conv: (P2, P3)
    # Build the 3x3 output convs of the levels not in OUT_INDS too (never used; they only make
    # the parameter count and the checkpoint keys match the reference, spec 4.4/4.5).
    f.BUILD_UNUSED_OUTPUT_CONVS = True

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
