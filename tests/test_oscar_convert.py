"""tools/convert_pretrained.py: torchvision ResNet and reference (mmdet) keys -> OSCAR keys."""
import importlib.util
import re
import subprocess
import sys

import pytest
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from helpers import oscar_cfg

from oscar.convert import convert_mmdet_oscar, convert_torchvision_resnet


def build(deep_stem=True, width=128):
    cfg = oscar_cfg(f"oscar_R18_FPN_P2_{width}_1x")
    cfg.MODEL.FLEX_RESNET.DEEP_STEM = deep_stem
    return build_model(cfg)


@pytest.mark.parametrize("deep_stem", [True, False])
def test_torchvision_resnet18_keys_map(deep_stem):
    tv = torchvision.models.resnet18(weights=None).state_dict()
    converted, skipped = convert_torchvision_resnet(tv, deep_stem=deep_stem)
    model_state = build(deep_stem).state_dict()
    for key, value in converted.items():
        assert key in model_state and model_state[key].shape == value.shape, key
    stem_keys = [k for k in tv if k.startswith(("conv1.", "bn1."))]
    assert set(skipped) == {"fc.weight", "fc.bias"} | (set(stem_keys) if deep_stem else set())
    backbone = {k for k in model_state if k.startswith("backbone.bottom_up.")}
    missing = backbone - set(converted)
    if deep_stem:  # only the deep stem stays random
        assert missing and all(k.startswith("backbone.bottom_up.stem.") for k in missing)
    else:
        assert not missing


def test_cli_writes_a_loadable_detectron2_checkpoint(tmp_path):
    tv = torchvision.models.resnet18(weights=None)
    src = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), src)
    # .pkl through the command line, .pth in-process
    res = subprocess.run([sys.executable, "tools/convert_pretrained.py", str(src),
                          str(tmp_path / "r18.pkl")], capture_output=True, text=True, check=True)
    assert "deep stem" in res.stdout
    spec = importlib.util.spec_from_file_location("convert_pretrained",
                                                  "tools/convert_pretrained.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(src), str(tmp_path / "r18.pth")]) == 0
    for name in ("r18.pkl", "r18.pth"):
        model = build(deep_stem=True)
        DetectionCheckpointer(model).load(str(tmp_path / name))
        assert torch.equal(model.backbone.bottom_up.layer3[1].conv2.weight,
                           tv.layer3[1].conv2.weight)


def to_mmdet(state):
    """Our keys -> the reference's (spec 4.5), to check the inverse mapping."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^backbone\.(lateral_convs|fpn_convs)\.(\d+)\.", r"neck.\1.\2.conv.", key)
        key = key.replace("backbone.bottom_up.", "backbone.").replace("head.", "bbox_head.", 1)
        out[key] = value
    return out


def test_reference_checkpoint_keys_round_trip():
    model = build(width=256)
    mmdet = to_mmdet(model.state_dict())
    assert "neck.fpn_convs.3.conv.weight" in mmdet and "bbox_head.scales.1.scale" in mmdet
    assert "backbone.stem.6.weight" in mmdet and "bbox_head.refine_reg_convs.0.gn.bias" in mmdet
    converted, skipped = convert_mmdet_oscar(mmdet)
    assert not skipped
    assert set(converted) == set(model.state_dict())
