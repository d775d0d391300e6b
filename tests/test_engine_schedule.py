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


def test_multistep_warmup_multiplies_the_stepped_value():
    from deepinfrared_d2.engine import MultiStepWarmupScheduler

    # FCOS-RFLA (spec 8.2): constant 1/3 warmup for 5000 iterations over steps (4616, 6347)
    s = MultiStepWarmupScheduler(6924, (4616, 6347), 0.1, warmup_iters=5000,
                                 warmup_factor=1 / 3, warmup_method="constant")
    assert [s.value_at_iter(t) for t in (0, 4615, 4616, 4999, 5000, 6346, 6347)] == (
        pytest.approx([1 / 3, 1 / 3, 0.1 / 3, 0.1 / 3, 0.1, 0.1, 0.01]))
    # Faster R-CNN (spec 8.3): linear from 0.001 over 500 iterations
    s = MultiStepWarmupScheduler(6924, (4616, 6347), 0.1, warmup_iters=500,
                                 warmup_factor=0.001, warmup_method="linear")
    assert s.value_at_iter(0) == pytest.approx(0.001)
    assert s.value_at_iter(100) == pytest.approx(1 - 0.8 * 0.999)
    assert s.value_at_iter(500) == 1.0 and s.value_at_iter(6923) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="WARMUP_METHOD"):
        MultiStepWarmupScheduler(10, (5,), 0.1, warmup_method="cosine")


def test_full_model_clipping_scales_all_gradients_by_one_norm():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 1.0
    cfg.SOLVER.MOMENTUM = 0.0
    cfg.SOLVER.WEIGHT_DECAY = 0.0
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 6.5
    model = torch.nn.Linear(2, 1)
    optimizer = build_optimizer(cfg, model)
    model.weight.grad = torch.tensor([[3.0, 4.0]])
    model.bias.grad = torch.tensor([12.0])  # total L2 norm 13 -> every gradient halved
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    steps = [b - p.detach() for b, p in zip(before, model.parameters())]
    assert torch.allclose(steps[0], torch.tensor([[1.5, 2.0]]))
    assert torch.allclose(steps[1], torch.tensor([6.0]), atol=1e-4)
    # Detectron2's per-parameter "norm" clips each tensor on its own: the bias alone
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
    optimizer = build_optimizer(cfg, model)
    model.weight.grad = torch.tensor([[3.0, 4.0]])
    model.bias.grad = torch.tensor([12.0])
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    steps = [b - p.detach() for b, p in zip(before, model.parameters())]
    assert torch.allclose(steps[0], torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(steps[1], torch.tensor([6.5]), atol=1e-4)
