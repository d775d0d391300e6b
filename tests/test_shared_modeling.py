"""The shared model parts: FlexFPN's extra levels, BN with frozen statistics (mmdet's
norm_eval) and MMDetRPN's low-quality matches with a minimum IoU (OSCAR spec 8.2, 8.3)."""
import pytest
import torch
from detectron2.config import CfgNode
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.matcher import Matcher
from torch import nn

from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.modeling import (
    FlexResNet,
    StatsFrozenBatchNorm2d,
    build_flex_resnet_fpn_backbone,
    build_resnet_flex_fpn_backbone,
    freeze_bn_statistics,
)
from deepinfrared_d2.modeling.flex_fpn import FlexFPN
from deepinfrared_d2.modeling.rpn import MinIoULowQualityMatcher

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def flex_cfg(**fpn) -> CfgNode:
    cfg = get_cfg()
    cfg.MODEL.FLEX_RESNET.STEM_CHANNELS = 16
    cfg.MODEL.FLEX_RESNET.BASE_CHANNELS = 8
    cfg.MODEL.FLEX_FPN.OUT_CHANNELS = 16
    for key, value in fpn.items():
        cfg.MODEL.FLEX_FPN[key] = value
    return cfg


@pytest.mark.parametrize("top,source,expected", [
    ("LastLevelMaxPool", "p5", {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}),
    ("LastLevelP6P7", "p5", {"p3": 8, "p4": 16, "p5": 32, "p6": 64, "p7": 128}),
    ("LastLevelP6P7", "res5", {"p3": 8, "p4": 16, "p5": 32, "p6": 64, "p7": 128}),
])
def test_flex_fpn_extra_levels(top, source, expected):
    levels = [0, 1, 2, 3] if top == "LastLevelMaxPool" else [1, 2, 3]
    cfg = flex_cfg(TOP_BLOCK=top, TOP_BLOCK_IN_FEATURE=source, OUT_INDS=levels)
    fpn = build_flex_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
    assert {k: v.stride for k, v in fpn.output_shape().items()} == expected
    assert fpn.size_divisibility == 32  # padded like mmdet, not to the P7 stride
    with torch.no_grad():
        out = fpn(torch.zeros(1, 3, 96, 160))
    # 96 x 160 -> P5 3 x 5 -> P6 2 x 3 -> P7 1 x 2 (stride-2 levels round up)
    assert tuple(out["p6"].shape[-2:]) == (2, 3)
    if "p7" in out:
        assert tuple(out["p7"].shape[-2:]) == (1, 2)
        assert fpn.top_block.p6.in_channels == (64 if source == "res5" else 16)
        assert not fpn.top_block.p6.bias.detach().any()  # mmdet's Xavier init, bias 0


def test_flex_fpn_top_block_errors():
    with pytest.raises(ValueError, match="TOP_BLOCK must be one of"):
        build_flex_resnet_fpn_backbone(flex_cfg(TOP_BLOCK="P6"), ShapeSpec(channels=3))
    bottom_up = FlexResNet(stem_channels=16, base_channels=8)
    with pytest.raises(ValueError, match="neither a bottom-up output"):  # P6 from P5, no P5
        FlexFPN(bottom_up, ["res2", "res3"], 16, [0, 1], top_block=LastLevelMaxPool())


def test_patch_stem_sees_every_pixel_once_at_stride_4():
    net = FlexResNet(stem_channels=16, base_channels=8, patch_stem=True, stem_stride=4,
                     max_pooling=False).eval()
    conv = net.stem[0]
    assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (4, 4), (0, 0))
    assert [s.stride for s in net.output_shape().values()] == [4, 8, 16, 32]
    x = torch.rand(1, 3, 32, 40, requires_grad=True)
    assert tuple(net.stem(x).shape) == (1, 16, 8, 10)
    conv(x)[0, :, 2, 7].sum().backward()  # one stem cell depends on its 4x4 block only
    touched = x.grad[0].abs().sum(0).nonzero().tolist()
    assert touched == [[r, c] for r in range(8, 12) for c in range(28, 32)]


def test_bn_with_frozen_statistics_trains_its_affine_part_only():
    bn = nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -1.0]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0]))
    net = freeze_bn_statistics(nn.Sequential(nn.Conv2d(2, 2, 1), bn))
    frozen = net[1]
    assert type(frozen) is StatsFrozenBatchNorm2d and frozen.weight.requires_grad
    net.train()
    x = torch.randn(4, 2, 3, 3) * 5 + 2
    y = frozen(x)
    expected = (x - torch.tensor([1.0, -1.0]).view(1, 2, 1, 1)) / torch.sqrt(
        torch.tensor([4.0, 1.0]) + frozen.eps).view(1, 2, 1, 1)
    assert torch.allclose(y, expected, atol=1e-5)
    assert frozen.running_mean.tolist() == [1.0, -1.0]  # not updated in training
    y.sum().backward()
    assert frozen.weight.grad is not None and frozen.bias.grad is not None


def test_norm_eval_resnet_backbone():
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.NORM_EVAL = True
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FLEX_FPN.OUT_INDS = [0, 1, 2, 3]
    backbone = build_resnet_flex_fpn_backbone(cfg, ShapeSpec(channels=3))
    bottom_up = backbone.bottom_up
    # stem and res2 frozen entirely (FrozenBN, no gradient); res3-res5: statistics frozen only
    assert isinstance(bottom_up.stem.conv1.norm, FrozenBatchNorm2d)
    assert isinstance(bottom_up.res2[0].conv1.norm, FrozenBatchNorm2d)
    assert not any(p.requires_grad for p in bottom_up.res2.parameters())
    norms = [m for m in bottom_up.res3.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(type(m) is StatsFrozenBatchNorm2d and m.weight.requires_grad
                         for m in norms)


def test_rpn_low_quality_matches_need_the_minimum_iou():
    # GT 0's best anchors (0 and 2, tied) reach only 0.25; GT 1's best (anchor 1) 0.4
    iou = torch.tensor([[0.25, 0.10, 0.25, 0.0],
                        [0.05, 0.40, 0.10, 0.0]])
    d2 = Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True)
    mmdet = MinIoULowQualityMatcher([0.3, 0.7], [0, -1, 1], low_quality_min=0.3)
    # Detectron2: every GT's best anchors become positive (0.25 < 0.3 or not)
    assert d2(iou)[1].tolist() == [1, 1, 1, 0]
    # mmdet: GT 0's best IoU is below 0.3, so its anchors stay negative (0.25 < 0.3)
    assert mmdet(iou)[1].tolist() == [0, 1, 0, 0]
