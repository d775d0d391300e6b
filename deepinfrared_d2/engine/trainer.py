"""``SIRSTTrainer``: Detectron2's ``DefaultTrainer`` for the SIRST datasets.

Differences from ``DefaultTrainer``:
- runs distributed on CPU (gloo) as well as GPU (no ``device_ids`` for CPU models);
- the NoCo mapper for training/testing and ``NoCoEvaluator`` for ``evaluator_type="noco"``
  datasets (``COCOEvaluator(use_fast_impl=False)`` for COCO-style ones);
- ``SOLVER.AMP.ENABLED`` / ``TEST.AMP.ENABLED`` mean float16 AMP on GPU and, on a CPU,
  bfloat16 autocast where the CPU computes bfloat16 natively, float32 elsewhere
  (``MODEL.CPU_AMP_DTYPE``, ``deepinfrared_d2.engine.precision``);
- AdamW and the per-epoch poly schedule (``deepinfrared_d2.engine.optimizer/schedule``);
- optional best-checkpoint saving on an evaluation metric, refused on test splits;
- a non-finite loss stops training with ``TrainingDiverged`` naming the last good checkpoint;
- checkpoints include the optimizer state, so ``--resume`` restores it (v0.6 did not).
"""
from __future__ import annotations

import logging
import os
import time
import weakref

import torch
from detectron2.config import CfgNode
from detectron2.data import (
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase, hooks
from detectron2.engine.defaults import create_ddp_model
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from .checkpoint import SIRSTCheckpointer
from .optimizer import build_optimizer
from .precision import amp_dtype
from .schedule import build_lr_scheduler

logger = logging.getLogger(__name__)


class CPUAutocastTrainer(SimpleTrainer):
    """``SimpleTrainer`` with the forward pass under CPU bfloat16 autocast.

    Detectron2's ``AMPTrainer`` needs CUDA (float16 + loss scaling). On CPUs with native
    bfloat16 (AVX512-BF16, AMX) autocast roughly halves the time of a training step; bfloat16
    has float32's range, so no loss scaling is needed. Models must compute their losses in
    float32 (OSCAR does). ``SIRSTTrainer`` uses it only where ``amp_dtype`` says bfloat16.
    """

    def run_step(self):
        assert self.model.training, "[CPUAutocastTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss_dict = self.model(data)
        losses = loss_dict if isinstance(loss_dict, torch.Tensor) else sum(loss_dict.values())
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        self.optimizer.zero_grad()
        losses.backward()
        self._write_metrics(loss_dict, data_time)
        self.optimizer.step()


class AutocastInference(torch.nn.Module):
    """Runs the wrapped model under autocast with ``dtype`` (``amp_dtype``) for testing."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, *args, **kwargs):
        device = next(self.model.parameters()).device.type
        with torch.autocast(device, dtype=self.dtype):
            return self.model(*args, **kwargs)


def with_test_precision(cfg: CfgNode, model: torch.nn.Module) -> torch.nn.Module:
    """``model`` wrapped in ``AutocastInference`` when ``TEST.AMP.ENABLED`` resolves to a
    reduced precision on its device (``amp_dtype``), else ``model`` itself (float32)."""
    device = next(model.parameters()).device.type
    dtype = amp_dtype(cfg, cfg.TEST.AMP.ENABLED, device)
    return AutocastInference(model, dtype) if dtype is not None else model


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message names the last good checkpoint."""


def check_selection_datasets(cfg: CfgNode) -> None:
    """Refuse best-checkpoint selection on a test split (honest numbers)."""
    if cfg.SOLVER.BEST_CHECKPOINT.ENABLED:
        bad = [d for d in cfg.DATASETS.TEST if "test" in d]
        if bad:
            raise ValueError(
                f"SOLVER.BEST_CHECKPOINT.ENABLED selects a checkpoint on DATASETS.TEST={bad}, "
                "which "
                "is a test split: select on a validation split (e.g. train on sirst_v2_train_full "
                "and evaluate on sirst_v2_val_full) or disable it and report the last checkpoint."
            )


class SIRSTTrainer(DefaultTrainer):
    """Trainer for models whose data comes through ``NoCoDatasetMapper``."""

    def __init__(self, cfg: CfgNode):  # mirrors DefaultTrainer.__init__, CPU-DDP aware
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        check_selection_datasets(cfg)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        on_gpu = next(model.parameters()).device.type == "cuda"
        model = create_ddp_model(model, broadcast_buffers=False,
                                 device_ids=[comm.get_local_rank()] if on_gpu else None)
        trainer_cls = SimpleTrainer
        # float16 + loss scaling on GPU; bfloat16 autocast on a CPU only where it is native
        if amp_dtype(cfg, cfg.SOLVER.AMP.ENABLED, "cuda" if on_gpu else "cpu") is not None:
            trainer_cls = AMPTrainer if on_gpu else CPUAutocastTrainer
        self._trainer = trainer_cls(model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = SIRSTCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    # Detectron2 v0.6's DefaultTrainer checkpoints the iteration and the hooks (LR scheduler)
    # but not the inner trainer: the optimizer (and AMP grad scaler) state was lost on
    # --resume. Later Detectron2 versions fix it the same way.
    def state_dict(self):
        ret = super().state_dict()
        ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if "_trainer" in state_dict:
            self._trainer.load_state_dict(state_dict["_trainer"])
        else:
            logger.warning("checkpoint has no optimizer state (saved by an older trainer): "
                           "the optimizer restarts from scratch")

    @classmethod
    def build_model(cls, cfg):
        """Detectron2's model, in channels_last memory format when ``MODEL.CHANNELS_LAST``."""
        model = super().build_model(cfg)
        if cfg.MODEL.CHANNELS_LAST:
            model = model.to(memory_format=torch.channels_last)
        return model

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_train_loader(cls, cfg):
        from deepinfrared_d2.data.mapper import NoCoDatasetMapper

        return build_detection_train_loader(cfg, mapper=NoCoDatasetMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        from deepinfrared_d2.data.mapper import NoCoDatasetMapper

        return build_detection_test_loader(cfg, dataset_name,
                                           mapper=NoCoDatasetMapper(cfg, is_train=False))

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Detectron2's test loop; under autocast when ``TEST.AMP.ENABLED`` resolves to a
        reduced precision (``amp_dtype``)."""
        return super().test(cfg, with_test_precision(cfg, model), evaluators)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None) -> DatasetEvaluator:
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        kind = MetadataCatalog.get(dataset_name).get("evaluator_type", "coco")
        if kind == "noco":
            from deepinfrared_d2.evaluation import NoCoEvaluator

            return NoCoEvaluator(dataset_name, score_threshold=cfg.TEST.SCORE_THRESHOLD_PD_FA,
                                 output_dir=output_folder)
        if kind == "coco":
            return COCOEvaluator(dataset_name, output_dir=output_folder, use_fast_impl=False)
        raise ValueError(f"no evaluator for evaluator_type={kind!r} of dataset {dataset_name!r}")

    def build_hooks(self):
        ret = super().build_hooks()
        best = self.cfg.SOLVER.BEST_CHECKPOINT
        if best.ENABLED and comm.is_main_process() and self.cfg.TEST.EVAL_PERIOD > 0:
            at = next(i for i, h in enumerate(ret) if isinstance(h, hooks.EvalHook)) + 1
            ret.insert(at, hooks.BestCheckpointer(self.cfg.TEST.EVAL_PERIOD, self.checkpointer,
                                                  best.METRIC, mode=best.MODE))
        return ret

    def train(self):
        try:
            return super().train()
        except FloatingPointError as e:
            last = (self.checkpointer.get_checkpoint_file()
                    if self.checkpointer.has_checkpoint() else None)
            where = (f"the last good checkpoint is kept at {last}" if last else
                     "no checkpoint was saved yet "
                     f"(SOLVER.CHECKPOINT_PERIOD={self.cfg.SOLVER.CHECKPOINT_PERIOD})")
            msg = (f"Training stopped: the loss became NaN or infinite at iteration {self.iter} "
                   f"({str(e).splitlines()[-1]}); {where}. Lower SOLVER.BASE_LR or enable "
                   "SOLVER.CLIP_GRADIENTS, then restart (with --resume to continue from it).")
            logger.error(msg)
            raise TrainingDiverged(msg) from e
