"""OSCAR loss functions (spec 6.1) against hand values and torchvision's focal loss."""
import math

import torch
from torchvision.ops import sigmoid_focal_loss as tv_focal

from deepinfrared_d2.modeling.losses import diou_loss, sigmoid_focal_loss
from oscar.losses import reg_quality_focal_loss


def test_focal_loss_matches_definition_and_torchvision():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0, -20.0])
    t = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    gamma, alpha = 3.0, 0.25
    ours = sigmoid_focal_loss(x, t, gamma, alpha)
    p = torch.sigmoid(x.double())
    hand = torch.where(t.bool(), -alpha * (1 - p) ** gamma * torch.log(p),
                       -(1 - alpha) * p ** gamma * torch.log(1 - p))
    assert torch.allclose(ours.double(), hand, rtol=1e-5, atol=1e-12)
    assert torch.allclose(ours, tv_focal(x, t, alpha=alpha, gamma=gamma, reduction="none"),
                          rtol=1e-5, atol=1e-12)
    assert ours.dtype == torch.float32
    # fp16 logits are computed in float32
    assert sigmoid_focal_loss(x.half(), t, gamma, alpha).dtype == torch.float32


def test_focal_loss_is_finite_for_extreme_logits():
    x = torch.tensor([-200.0, 200.0], requires_grad=True)
    loss = sigmoid_focal_loss(x, torch.tensor([1.0, 0.0]), 3.0, 0.25)
    # log clamped at FLT_MIN: 0.25 * 1 * 87.34 and 0.75 * 1 * 87.34
    assert torch.allclose(loss, torch.tensor([0.25, 0.75]) * 87.3365, rtol=1e-4)
    loss.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_diou_hand_values():
    same = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    assert diou_loss(same, same).item() < 1e-6
    # pred (0,0,2,2), target (2,0,4,2): IoU 0, enclosing 4x2 -> c2 = 20, rho2 = 2^2 = 4
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    target = torch.tensor([[2.0, 0.0, 4.0, 2.0]])
    assert math.isclose(diou_loss(pred, target).item(), 1 + 4 / 20, rel_tol=1e-6)
    # half overlap: pred (0,0,2,2), target (1,0,3,2): IoU 2/6, c2 = 9 + 4, rho2 = 1
    target = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    assert math.isclose(diou_loss(pred, target).item(), 1 - (2 / 6 - 1 / 13), rel_tol=1e-5)


def test_reg_quality_focal_loss_hand_value_and_gradient_through_the_factor():
    q = torch.tensor([0.3, -2.0], requires_grad=True)
    t = torch.tensor([0.8, 0.0])
    loss = reg_quality_focal_loss(q, t, beta=2.0)
    s = torch.sigmoid(q.detach())
    bce = -(t * torch.log(s) + (1 - t) * torch.log(1 - s))
    assert torch.allclose(loss, bce * (s - t).abs() ** 2, rtol=1e-6)
    loss.sum().backward()
    # d/dq [bce * |s - t|^2] with the factor *not* detached
    grad = (s - t) * (s - t) ** 2 + bce * 2 * (s - t) * s * (1 - s)
    assert torch.allclose(q.grad, grad, rtol=1e-5)
