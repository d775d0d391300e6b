"""Config keys of the shared backbones (``add_backbone_config``), with the defaults of OSCAR's
R18 256 model (OSCAR spec 4.1, 4.2); ``add_deepinfrared_config`` adds them for every model."""
from detectron2.config import CfgNode as CN

__all__ = ["add_backbone_config"]


def add_backbone_config(cfg: CN) -> None:
    """Add ``MODEL.FLEX_RESNET``, ``MODEL.FLEX_FPN`` and ``MODEL.RESNETS.NORM_EVAL``."""
    # ---- FlexResNet (OSCAR spec 4.1) ----
    r = cfg.MODEL.FLEX_RESNET = CN()
    r.DEPTH = 18  # 18 / 34 (BasicBlock) or 50 / 101 / 152 (Bottleneck)
    r.DEEP_STEM = True  # three 3x3 convs (3 -> STEM_CHANNELS/2 -> STEM_CHANNELS/2 -> STEM_CHANNELS)
    # One conv with kernel = stride = STEM_STRIDE instead of DEEP_STEM's (a patchify stem; with
    # STEM_STRIDE 4 and no MAX_POOLING nothing runs at full or half resolution).
    r.PATCH_STEM = False
    r.STEM_CHANNELS = 64
    r.STEM_STRIDE = 2  # stride of the first stem conv
    r.MAX_POOLING = True  # 3x3 stride-2 max-pool after the stem
    r.STAGE_STRIDES = [1, 2, 2, 2]  # first-block stride of layer1..layer4
    r.BASE_CHANNELS = 64  # width of layer1 (doubles every stage)
    r.NORM = "BN"  # trainable BN with batch statistics ("SyncBN" for multi-GPU)
    r.ZERO_INIT_RESIDUAL = True  # last BN of every residual block starts at weight 0, bias 0
    r.OUT_FEATURES = ["res2", "res3", "res4", "res5"]  # stages handed to the FPN

    # ---- FlexFPN (OSCAR spec 4.2) ----
    f = cfg.MODEL.FLEX_FPN = CN()
    f.IN_FEATURES = ["res2", "res3", "res4", "res5"]  # backbone outputs the FPN merges
    f.OUT_CHANNELS = 256  # C
    f.OUT_INDS = [0, 1]  # indices into IN_FEATURES that get an output conv: (P2, P3)
    # Build the 3x3 output convs of the levels not in OUT_INDS too (never used; they only make
    # the parameter count and the checkpoint keys match the reference, spec 4.4/4.5).
    f.BUILD_UNUSED_OUTPUT_CONVS = True
    # Extra levels above the outputs: "" (none), "LastLevelMaxPool" (P6 = 1x1 max-pool stride 2
    # of P5: Faster R-CNN) or "LastLevelP6P7" (P6 = 3x3 conv stride 2, P7 = the same on ReLU(P6)).
    f.TOP_BLOCK = ""
    f.TOP_BLOCK_IN_FEATURE = "p5"  # input of LastLevelP6P7: "p5" (FCOS) or "res5" (RetinaNet)

    # build_resnet_flex_fpn_backbone: Detectron2's ResNet with RESNETS.NORM "BN" normalises
    # with its running statistics in training too, affine trained (mmdet's norm_eval).
    cfg.MODEL.RESNETS.NORM_EVAL = False
