"""A new detector plugs in without touching tools/: a throw-away meta-architecture with its own
config adder, trained for two iterations and evaluated through ``tools/train_net.py``."""
import json
import os
import subprocess
import sys
import textwrap

import torch
from helpers import ROOT

DETECTOR = textwrap.dedent('''
    """A per-pixel target classifier: just enough of a detector for SIRSTTrainer."""
    import torch
    import torch.nn.functional as F
    from detectron2.config import CfgNode as CN
    from detectron2.modeling import META_ARCH_REGISTRY
    from detectron2.structures import Boxes, Instances
    from torch import nn

    from deepinfrared_d2.config import register_config_adder


    @register_config_adder("ThrowAwayDetector")
    def add_throw_away_config(cfg):
        cfg.MODEL.THROW_AWAY = CN()
        cfg.MODEL.THROW_AWAY.CHANNELS = 8  # hidden channels
        cfg.MODEL.THROW_AWAY.TOP_K = 5  # detections per image


    @META_ARCH_REGISTRY.register()
    class ThrowAwayDetector(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            c = cfg.MODEL.THROW_AWAY.CHANNELS
            self.top_k = cfg.MODEL.THROW_AWAY.TOP_K
            self.net = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(c, 1, 3, padding=1))
            self.register_buffer("mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(-1, 1, 1), False)
            self.register_buffer("std", torch.tensor(cfg.MODEL.PIXEL_STD).view(-1, 1, 1), False)

        @property
        def device(self):
            return self.mean.device

        def forward(self, batched_inputs):
            images = [(d["image"].to(self.device).float() - self.mean) / self.std
                      for d in batched_inputs]
            logits = [self.net(image[None])[0, 0] for image in images]
            if self.training:
                loss = 0.0
                for d, lg in zip(batched_inputs, logits):
                    target = torch.zeros_like(lg)
                    for x1, y1, x2, y2 in d["instances"].gt_boxes.tensor.long().tolist():
                        target[y1:y2, x1:x2] = 1.0
                    loss = loss + F.binary_cross_entropy_with_logits(lg, target)
                return {"loss_cls": loss / len(logits)}
            outputs = []
            for d, lg in zip(batched_inputs, logits):
                h, w = lg.shape
                scores, idx = lg.sigmoid().flatten().topk(min(self.top_k, h * w))
                x = (idx % w).float() * d["width"] / w
                y = (idx // w).float() * d["height"] / h
                boxes = torch.stack([x - 2, y - 2, x + 3, y + 3], dim=1)
                outputs.append({"instances": Instances((d["height"], d["width"]),
                                                       pred_boxes=Boxes(boxes), scores=scores,
                                                       pred_classes=torch.zeros_like(idx))})
            return outputs
''')


def test_a_new_meta_architecture_trains_through_tools_train_net(tmp_path, sirst_root):
    (tmp_path / "throw_away_detector.py").write_text(DETECTOR)
    config = tmp_path / "throw_away.yaml"
    config.write_text(textwrap.dedent(f"""
        _BASE_: "{ROOT}/configs/Base-SIRST-V2.yaml"
        IMPORTS: ["throw_away_detector"]
        MODEL:
          META_ARCHITECTURE: "ThrowAwayDetector"
          DEVICE: "cuda"  # falls back to the CPU (with a warning in the log) without CUDA
          THROW_AWAY:
            CHANNELS: 4
        DATASETS:
          TRAIN: ("sirst_v2_mini_trainval",)
          TEST: ("sirst_v2_mini_test",)
        DATALOADER:
          NUM_WORKERS: 0
        INPUT:
          RESIZE_MODE_TRAIN: "none"
          RESIZE_MODE_TEST: "none"
          TARGET_CROP:
            ENABLED: True
            SIZE: (64, 64)
        SOLVER:
          IMS_PER_BATCH: 2
          BASE_LR: 0.01
          MAX_ITER: 2
          STEPS: ()
          CHECKPOINT_PERIOD: 100
        OUTPUT_DIR: "{tmp_path / 'run'}"
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_net.py"),
                           "--config-file", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / "model_final.pth").is_file()
    if not torch.cuda.is_available():
        assert "WARNING" in (run / "log.txt").read_text().split("CUDA is not available")[0][-300:]
    saved = (run / "config.yaml").read_text()
    assert "THROW_AWAY" in saved and "CHANNELS: 4" in saved  # the adder's key, the YAML's value
    lines = [json.loads(line) for line in (run / "metrics.json").read_text().splitlines()]
    losses = [m["total_loss"] for m in lines if "total_loss" in m]
    assert [m["iteration"] for m in lines if "total_loss" in m] == [1] and 0 < losses[0] < 10
    evaluated = [m for m in lines if "noco/mNoCoAP" in m]
    assert evaluated and 0.0 <= evaluated[-1]["noco/mNoCoAP"] <= 1.0
    predictions = json.loads((run / "inference/sirst_v2_mini_test/predictions.json").read_text())
    n_test = len(open(os.path.join(sirst_root, "splits", "mini_test.txt")).read().split())
    assert len(predictions) == n_test * 5  # TOP_K detections per test image
