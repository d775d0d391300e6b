"""FCOS config keys (``add_fcos_config``), with the defaults of the FCOS-RFLA R50 baseline
(OSCAR spec 5.2, 6.3, 7.5, 8.2): the head, both assigners, the losses and inference. The
backbone keys (Detectron2's ``MODEL.RESNETS``, the shared ``MODEL.FLEX_*``) are set by the
configs in ``projects/FCOS/configs``."""
from detectron2.config import CfgNode as CN

from deepinfrared_d2.config import register_config_adder


@register_config_adder("FCOS")
def add_fcos_config(cfg: CN) -> None:
    """Add the ``MODEL.FCOS`` keys (``deepinfrared_d2.config.get_cfg`` calls it for configs
    whose ``MODEL.META_ARCHITECTURE`` is "FCOS")."""
    f = cfg.MODEL.FCOS = CN()
    f.NUM_CLASSES = 1  # foreground classes (SIRST-V2: "Target")
    f.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]  # FPN levels the shared head runs on
    # ---- head (spec 8.2: RFLA_FCOSHead) ----
    f.FEAT_CHANNELS = 256  # width of the cls and reg towers
    f.STACKED_CONVS = 4  # 3x3 convs per tower
    f.NORM = ""  # tower norm: "" (conv bias, no norm: the RFLA config) or "GN"
    f.GN_GROUPS = 32  # GroupNorm groups when NORM is "GN"
    f.HEAD_INIT_STD = 0.01  # N(0, std^2) for every head conv, bias 0 ...
    f.PRIOR_PROB = 0.01  # ... except the cls bias, -log((1 - p) / p)
    f.CENTERNESS_ON_REG = True  # centerness conv on the reg tower (else on the cls tower)
    # Regression = ReLU(scale * raw) in units of the level stride (True), or exp(scale * raw)
    # in pixels (False, vanilla FCOS); targets follow.
    f.NORM_ON_BBOX = True
    # ---- label assignment ----
    f.ASSIGNER = "rfla"  # "rfla" (spec 5.2) or "fcos" (inside the GT box + REGRESS_RANGES)
    # "fcos": a point is positive for the smallest GT containing it (strictly) whose largest
    # distance (pixels) lies in its level's range.
    f.REGRESS_RANGES = [[-1.0, 64.0], [64.0, 128.0], [128.0, 256.0], [256.0, 512.0],
                        [512.0, 1e8]]
    f.RFLA = CN()
    # Theoretical receptive field (pixels) of each level of IN_FEATURES, here of the
    # ResNet-50-FPN P3-P7 (spec 5.2.1).
    f.RFLA.TRF = [91.0, 267.0, 427.0, 555.0, 811.0]
    f.RFLA.FRACTION = 0.5  # receptive-field box side = TRF * FRACTION
    f.RFLA.TOPK = [6, 1]  # top-k of stage 1 (rf boxes) and stage 2 (shrunk rf boxes)
    f.RFLA.RATIO = 0.9  # shrink factor of the rf boxes for stage 2
    # "faithful": the reference's in-place shrink of the rf boxes shared by a batch (the k-th
    # image with targets sees sides x 0.9^k); "clean": fresh rf boxes for every image.
    f.RFLA.MODE = "faithful"
    # Centerness target sqrt(max(min(l, r), c) / max(l, r) * max(min(t, b), c) / max(t, b)):
    # c = 0.01 in RFLA (positives may lie outside their GT), 0 in vanilla FCOS.
    f.CENTERNESS_CLAMP = 0.01
    # ---- losses (spec 6.3) ----
    f.FOCAL_LOSS_GAMMA = 2.0  # focal loss focusing exponent
    f.FOCAL_LOSS_ALPHA = 0.25  # focal loss positive weight
    f.CLS_WEIGHT = 1.0  # loss weights
    f.BBOX_WEIGHT = 1.0
    f.CENTERNESS_WEIGHT = 1.0
    f.DIOU_EPS = 1e-6  # added to the DIoU union and enclosing diagonal
    # ---- inference (spec 7.5) ----
    f.TEST_NMS_PRE = 3000  # best points per level (by p * centerness) before thresholding
    f.TEST_SCORE_THRESH = 0.05  # on the class probability p (strict)
    f.TEST_NMS_THRESH = 0.5  # IoU threshold of NMS (on the score p * centerness)
    f.TEST_MAX_PER_IMAGE = 3000  # detections kept per image
