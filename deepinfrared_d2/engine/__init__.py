"""Training engine: CPU/GPU launcher, optimizer and LR-schedule builders, the trainer and
the checkpointer every tool loads weights with."""
from .checkpoint import CheckpointError, SIRSTCheckpointer, load_checkpoint_file
from .defaults import setup_cfg
from .launch import launch
from .optimizer import build_optimizer
from .predictor import build_predictor, load_trained_model, predict_dataset
from .schedule import EpochPolyWarmupScheduler, MultiStepWarmupScheduler, build_lr_scheduler
from .trainer import SIRSTTrainer, TrainingDiverged

__all__ = [
    "CheckpointError",
    "SIRSTCheckpointer",
    "load_checkpoint_file",
    "launch",
    "build_predictor",
    "load_trained_model",
    "predict_dataset",
    "setup_cfg",
    "EpochPolyWarmupScheduler",
    "MultiStepWarmupScheduler",
    "build_lr_scheduler",
    "build_optimizer",
    "SIRSTTrainer",
    "TrainingDiverged",
]
