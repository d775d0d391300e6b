"""Training engine: CPU/GPU launcher, optimizer and LR-schedule builders, the trainer."""
from .launch import launch
from .schedule import EpochPolyWarmupScheduler, build_lr_scheduler
from .optimizer import build_optimizer
from .trainer import SIRSTTrainer, TrainingDiverged

__all__ = [
    "launch",
    "EpochPolyWarmupScheduler",
    "build_lr_scheduler",
    "build_optimizer",
    "SIRSTTrainer",
    "TrainingDiverged",
]
