#!/usr/bin/env python3
"""Train or evaluate any DeepInfrared-D2 model with Detectron2.

The config file names its model (``MODEL.META_ARCHITECTURE``) and the packages registering it
(``IMPORTS``), see ``deepinfrared_d2.config.get_cfg``: adding a model changes nothing here.

    python tools/train_net.py --config-file projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml
    python tools/train_net.py --config-file CFG --resume              # continue a run
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS out/model_final.pth
    python tools/train_net.py --config-file CFG --num-gpus 2          # 2 processes (gloo on CPU)

Trailing ``KEY VALUE`` pairs override the config. On a machine without CUDA,
``MODEL.DEVICE`` falls back to "cpu" (logged) and ``--num-gpus N`` starts N CPU processes.
Exit codes: 0 done, 2 a bad config, a missing file or a checkpoint that does not fit the model
(``--eval-only`` refuses one that leaves any weight unloaded), 3 the loss diverged (the log
names the last checkpoint).
"""
import sys

from detectron2.engine import default_argument_parser

from deepinfrared_d2.engine.train_net import run

if __name__ == "__main__":
    parsed = default_argument_parser().parse_args()
    print("Command Line Args:", parsed)
    sys.exit(run(parsed))
