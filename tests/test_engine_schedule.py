"""The OSCAR LR schedule (spec 8.1) and the optimizer builder."""
import pytest
import torch

from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.engine import EpochPolyWarmupScheduler, build_lr_scheduler, build_optimizer


def paper_cfg():
    cfg = get_cfg()
    cfg.SOLVER.OPTIMIZER = "AdamW"
    cfg.SOLVER.BASE_LR = 0.002
    cfg.SOLVER.WEIGHT_DECAY = 0.05
    cfg.SOLVER.LR_SCHEDULER_NAME = "EpochPolyWarmup"
    cfg.SOLVER.MAX_ITER = 6924
    cfg.SOLVER.EPOCH_ITERS = 577
    cfg.SOLVER.WARMUP_ITERS = 1000
    cfg.SOLVER.WARMUP_FACTOR = 1e-6
    return cfg


def test_paper_schedule_matches_reference_log():
    s = EpochPolyWarmupScheduler(6924, 577, power=1.0, warmup_iters=1000, warmup_factor=1e-6)
    # Values printed by the reference training log (spec 8.1).
    assert 0.002 * s.value_at_iter(49) == pytest.approx(9.800e-05, rel=1e-3)
    assert 0.002 * s.value_at_iter(549) == pytest.approx(1.098e-03, rel=1e-3)
    assert 0.002 * s.value_at_iter(6923) == pytest.approx(1.667e-04, rel=1e-3)
    # Warmup uses the current epoch's value: epoch 1 for t < 577, epoch 2 until t = 999.
    assert s.value_at_iter(576) == pytest.approx(1e-6 + (1 - 1e-6) * 0.576)
    assert s.value_at_iter(577) == pytest.approx((11 / 12) * (1e-6 + (1 - 1e-6) * 0.577))
    # Constant within an epoch after warmup, poly step between epochs.
    assert s.value_at_iter(1154) == s.value_at_iter(1730) == pytest.approx(10 / 12)


def test_scheduler_drives_adamw_through_detectron2_lr_multiplier():
    cfg = paper_cfg()
    model = torch.nn.Linear(2, 1)
    opt = build_optimizer(cfg, model)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["weight_decay"] == 0.05 and len(opt.param_groups) == 1
    sched = build_lr_scheduler(cfg, opt)
    lrs = []
    for _ in range(1001):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.002 * 1e-6)
    assert lrs[49] == pytest.approx(9.8002e-05, rel=1e-6)
    assert lrs[1000] == pytest.approx(0.002 * 11 / 12)


def test_unknown_optimizer_is_a_clear_error():
    cfg = paper_cfg()
    cfg.SOLVER.OPTIMIZER = "Adamax"
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        build_optimizer(cfg, torch.nn.Linear(2, 1))
