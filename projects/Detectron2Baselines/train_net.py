#!/usr/bin/env python3
"""Training script of the Detectron2 baselines (Detectron2 project layout): runs
``tools/train_net.py``.

    python projects/Detectron2Baselines/train_net.py \
        --config-file projects/Detectron2Baselines/configs/faster_rcnn_R18_FPN_cpu.yaml
"""
import os
import runpy

if __name__ == "__main__":  # not in spawned workers: they only unpickle the training function
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                                "train_net.py"), run_name="__main__")
