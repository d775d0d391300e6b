"""OSCAR model: parameter counts (spec 4.4), GFLOPs at 512x512 (spec 9.2), shapes, init,
gradient paths (spec 6.2) and the configs."""
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from helpers import oscar_cfg
from torch import nn

from deepinfrared_d2.modeling import BasicBlock
from deepinfrared_d2.utils.flops import count_gflops

CONFIGS = {256: "oscar_R18_FPN_P2_256_1x",
           128: "oscar_R18_FPN_P2_128_1x"}
# spec 4.4: backbone, neck (incl. the 2 unused output convs), head, total
PARAMS = {256: (11_195_744, 2_607_104, 3_853_967, 17_656_815),
          128: (11_195_744, 713_728, 968_527, 12_877_999)}
PARAMS_WITHOUT_UNUSED = {256: 16_476_655, 128: 12_582_831}
GFLOPS_512 = {256: 68.32, 128: 25.36}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_cfg(width=256, **overrides):
    return oscar_cfg(CONFIGS[width], **overrides)


def count(module):
    return sum(p.numel() for p in module.parameters())


class Dense(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(self.model.forward_dense(x))


@pytest.fixture(scope="module", params=[256, 128])
def model(request):
    torch.manual_seed(0)
    return request.param, build_model(make_cfg(request.param)).eval()


def test_parameter_counts(model):
    width, m = model
    backbone, neck, head, total = PARAMS[width]
    assert count(m.backbone.bottom_up) == backbone
    assert count(m.backbone) - count(m.backbone.bottom_up) == neck
    assert count(m.head) == head
    assert count(m) == total


def test_parameter_count_without_unused_fpn_convs():
    for width in (256, 128):
        cfg = make_cfg(width, **{"MODEL.FLEX_FPN.BUILD_UNUSED_OUTPUT_CONVS": "False"})
        assert count(build_model(cfg)) == PARAMS_WITHOUT_UNUSED[width]


def test_gflops_at_512_match_the_paper(model):
    width, m = model
    gflops = count_gflops(Dense(m), (torch.zeros(1, 3, 512, 512),))
    assert round(gflops, 2) == GFLOPS_512[width]


def test_feature_and_head_shapes(model):
    width, m = model
    shapes = m.backbone.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "p2": (width, 4), "p3": (width, 8)}
    assert m.backbone.size_divisibility == 32
    with torch.no_grad():
        out = m.forward_dense(torch.zeros(2, 3, 64, 96))
    assert out.refine_logits.shape == (2, 1, 16, 24)
    assert out.refine_deltas.shape == (2, 4, 16, 24) and out.refine_deltas.dtype == torch.float32
    assert out.noco_logits.shape == (2, 1, 16, 24)
    assert out.coarse_logits.shape == (2, 1, 8, 12)
    assert out.coarse_dists.shape == (2, 4, 8, 12) and (out.coarse_dists > 0).all()


@torch.no_grad()
def test_initialisation(model):
    _, m = model
    blocks = [b for b in m.backbone.bottom_up.modules() if isinstance(b, BasicBlock)]
    assert len(blocks) == 8
    assert all(float(b.bn2.weight.abs().sum() + b.bn2.bias.abs().sum()) == 0 for b in blocks)
    assert all(float(b.bn1.weight.min()) == 1 for b in blocks)
    stem = m.backbone.bottom_up.stem
    assert [tuple(stem[i].weight.shape) for i in (0, 3, 6)] == [(32, 3, 3, 3), (32, 32, 3, 3),
                                                                (64, 32, 3, 3)]
    assert stem[0].stride == (2, 2)
    head_convs = [c for c in m.head.modules() if isinstance(c, nn.Conv2d)]
    assert all(c.bias is None or float(c.bias.abs().sum()) == 0 for c in head_convs)
    std = torch.cat([c.weight.flatten() for c in head_convs]).std().item()
    assert abs(std - 0.01) < 0.001  # N(0, 0.01^2), no prior-probability bias
    fpn = list(m.backbone.lateral_convs) + list(m.backbone.fpn_convs)
    assert all(float(c.bias.abs().sum()) == 0 for c in fpn)
    assert [float(s.scale) for s in m.head.scales] == [1.0, 1.0]


def test_stem_and_stage_strides_are_configurable():
    # FPN outputs are named by stride (Detectron2 convention): strides 2, 4 -> p1, p2.
    cfg = make_cfg(128, **{"MODEL.FLEX_RESNET.MAX_POOLING": "False",
                           "MODEL.OSCAR.STRIDES": "[2, 4]",
                           "MODEL.OSCAR.IN_FEATURES": "['p1', 'p2']"})
    m = build_model(cfg)
    assert [s.stride for s in m.backbone.output_shape().values()] == [2, 4]
    with pytest.raises(ValueError, match="STRIDES"):
        build_model(make_cfg(128, **{"MODEL.FLEX_RESNET.STEM_STRIDE": "1",
                                     "MODEL.OSCAR.IN_FEATURES": "['p1', 'p2']"}))


def test_r50_backbone_builds():
    cfg = make_cfg(128, **{"MODEL.FLEX_RESNET.DEPTH": "50"})
    shapes = build_model(cfg).backbone.bottom_up.output_shape()
    assert [s.channels for s in shapes.values()] == [256, 512, 1024, 2048]


def _tiny_batch(with_boxes=True):
    boxes = torch.tensor([[10.0, 12.0, 14.0, 15.0], [40.0, 30.0, 52.0, 41.0]])
    inputs = []
    for b in range(2):
        inst = Instances((64, 64))
        inst.gt_boxes = Boxes(boxes[b:b + 1] if with_boxes else torch.zeros((0, 4)))
        inst.gt_classes = torch.zeros(len(inst.gt_boxes), dtype=torch.long)
        inputs.append({"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8),
                       "instances": inst, "noco_map": torch.rand(64, 64) * 0.5})
    return inputs


def test_refine_box_loss_reaches_the_coarse_regression_branch():
    torch.manual_seed(0)
    m = build_model(make_cfg(128)).train()
    losses = m(_tiny_batch())
    assert set(losses) == {"loss_coarse_cls", "loss_coarse_bbox", "loss_refine_cls",
                           "loss_refine_bbox", "loss_refine_noco"}
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    losses["loss_refine_bbox"].backward()
    # anchors are not detached: the refine box loss trains the coarse regression and its Scale
    assert m.head.coarse_conv_reg.weight.grad.abs().sum() > 0
    assert m.head.scales[1].scale.grad.abs() > 0
    assert m.head.coarse_conv_cls.weight.grad is None


def test_modulation_couples_the_classification_branches():
    torch.manual_seed(0)
    m = build_model(make_cfg(128)).train()
    m(_tiny_batch())["loss_refine_cls"].backward()
    assert m.head.coarse_conv_mod.weight.grad.abs().sum() > 0  # via w_c on z_r
    assert m.head.coarse_cls_convs[0].conv.weight.grad.abs().sum() > 0


def test_background_only_batch_has_zero_box_losses():
    torch.manual_seed(0)
    m = build_model(make_cfg(128)).train()
    losses = m(_tiny_batch(with_boxes=False))
    assert losses["loss_coarse_bbox"].item() == 0 and losses["loss_refine_bbox"].item() == 0
    assert losses["loss_coarse_cls"].item() > 0 and losses["loss_refine_noco"].item() > 0
    sum(losses.values()).backward()


@pytest.mark.parametrize("name", ["Base-OSCAR", "oscar_R18_FPN_P2_256_1x",
                                  "oscar_R18_FPN_P2_128_1x", "oscar_R18_FPN_P2_cpu",
                                  "oscar_R18_FPN_P2_192_cpu", "oscar_lite_R18_FPN_P2_cpu"])
def test_configs_load(name):
    cfg = oscar_cfg(name)
    assert cfg.MODEL.META_ARCHITECTURE == "OSCAR"
    assert cfg.DATASETS.TRAIN == ("sirst_v2_trainval_full",)
    assert cfg.DATASETS.TEST == ("sirst_v2_test_full",)
    assert not cfg.SOLVER.BEST_CHECKPOINT.ENABLED  # never select on the test split
    if not name.endswith("_cpu"):
        assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.EPOCH_ITERS, cfg.SOLVER.IMS_PER_BATCH) == (
            6924, 577, 4)
        assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY) == (0.002, 0.05)
        assert (cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.WARMUP_FACTOR) == (1000, 1e-6)
    else:
        assert cfg.INPUT.TARGET_CROP.ENABLED and cfg.INPUT.RESIZE_MODE_TEST == "none"


def test_benchmark_tool_reports_params_and_gflops(capsys):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("benchmark_models", "tools/benchmark_models.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(["--config-file", f"projects/OSCAR/configs/{CONFIGS[128]}.yaml",
               "--input-size", "512", "512", "--no-timing",
               "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["params"] == PARAMS[128][3]
    assert result["params_without_unused_fpn_convs"] == PARAMS_WITHOUT_UNUSED[128]
    assert round(result["gflops"], 2) == GFLOPS_512[128]
    # default: the test-time resize of a 512 x 640 image -> 600 x 750, padded to 608 x 768
    assert tool.network_input_size(make_cfg(128), None, (512, 640)) == (600, 750)
    assert tool.padded((600, 750), 32) == (608, 768)
