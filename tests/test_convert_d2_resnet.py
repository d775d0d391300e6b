"""tools/convert_pretrained.py --target detectron2: a torchvision ResNet-50 checkpoint loads
completely into the backbone of the R50 paper configs (Detectron2's ResNet)."""
import os
import subprocess
import sys

import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from helpers import ROOT

from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.modeling.convert import convert_torchvision_to_d2_resnet

CONFIG = os.path.join(ROOT, "projects", "Detectron2Baselines", "configs",
                      "faster_rcnn_R50_FPN_1x.yaml")


def test_torchvision_resnet50_fills_the_whole_bottom_up(tmp_path):
    tv = torchvision.models.resnet50(weights=None)
    with torch.no_grad():  # distinct statistics, so that a misplaced BN would show
        tv.layer2[0].bn2.running_var.uniform_(0.5, 2.0)
    converted, skipped = convert_torchvision_to_d2_resnet(tv.state_dict())
    assert {k for k in skipped if not k.endswith(".num_batches_tracked")} == {"fc.weight",
                                                                               "fc.bias"}
    model = build_model(get_cfg(CONFIG, ["MODEL.DEVICE", "cpu"]))
    state = model.state_dict()
    bottom_up = {k for k in state if k.startswith("backbone.bottom_up.")}
    # every tensor of Detectron2's ResNet but the BN counters comes from torchvision
    assert all(k.endswith(".num_batches_tracked") for k in bottom_up - set(converted))
    assert set(converted) <= bottom_up
    assert all(state[k].shape == v.shape for k, v in converted.items())

    src, dst = tmp_path / "resnet50.pth", tmp_path / "r50_d2.pkl"
    torch.save(tv.state_dict(), src)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_pretrained.py"),
                    str(src), str(dst), "--target", "detectron2"], check=True,
                   capture_output=True, text=True, cwd=ROOT)
    DetectionCheckpointer(model).load(str(dst))
    res3 = model.backbone.bottom_up.res3[0]
    assert torch.equal(res3.conv2.weight, tv.layer2[0].conv2.weight)
    assert torch.equal(res3.conv2.norm.running_var, tv.layer2[0].bn2.running_var)
    assert torch.equal(res3.shortcut.norm.bias, tv.layer2[0].downsample[1].bias)
    assert torch.equal(model.backbone.bottom_up.stem.conv1.weight, tv.conv1.weight)
