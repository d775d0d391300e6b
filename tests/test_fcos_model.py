"""FCOS model: head initialisation (spec 8.2), inference on hand-made head outputs (spec 7.5),
loss normalisation and the no-target batch (spec 6.3)."""
import math
import os

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, ImageList, Instances
from detectron2.utils.events import EventStorage
from helpers import ROOT
from torch import nn

from deepinfrared_d2.config import get_cfg
from fcos import FCOSHeadOutputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU_RFLA = os.path.join(ROOT, "projects", "FCOS", "configs", "fcos_rfla_R18_FPN_cpu.yaml")


def tiny_model(**overrides):
    opts = {"MODEL.DEVICE": "cpu", "MODEL.FLEX_RESNET.STEM_CHANNELS": "16",
            "MODEL.FLEX_RESNET.BASE_CHANNELS": "16", "MODEL.FLEX_FPN.OUT_CHANNELS": "32",
            "MODEL.FCOS.FEAT_CHANNELS": "32", "MODEL.FCOS.GN_GROUPS": "16",  # 2 channels a group
            **overrides}
    torch.manual_seed(0)
    return build_model(get_cfg(CPU_RFLA, [x for kv in opts.items() for x in kv]))


def test_head_initialisation_and_levels():
    m = tiny_model(**{"MODEL.FCOS.NORM": ""})  # the paper's towers: no norm
    head = m.head
    assert [c.conv.bias is not None for c in head.cls_convs] == [True] * 4  # no norm: bias
    assert all(isinstance(c.gn, nn.Identity) for c in head.cls_convs)
    assert head.conv_cls.bias.item() == pytest.approx(-math.log(99))  # prior 0.01
    assert not head.conv_reg.bias.detach().any()
    std = torch.cat([c.weight.detach().flatten() for c in head.modules()
                     if isinstance(c, nn.Conv2d)]).std().item()
    assert abs(std - 0.01) < 0.001
    assert len(head.scales) == 5 and m.strides == [8, 16, 32, 64, 128]
    with torch.no_grad():
        out = m.forward_dense(torch.zeros(1, 3, 64, 96))
    assert [tuple(x.shape[-2:]) for x in out.cls_logits] == [(8, 12), (4, 6), (2, 3), (1, 2),
                                                              (1, 1)]
    assert all((d >= 0).all() and d.dtype == torch.float32 for d in out.bbox_dists)


def hand_outputs(model, size=(64, 64)):
    """Head outputs that make nothing a candidate (p = sigmoid(-20)), zero distances."""
    shapes = [(math.ceil(size[0] / s), math.ceil(size[1] / s)) for s in model.strides]
    return FCOSHeadOutputs([torch.full((1, 1, h, w), -20.0) for h, w in shapes],
                           [torch.zeros(1, 4, h, w) for h, w in shapes],
                           [torch.zeros(1, 1, h, w) for h, w in shapes])


def logit(p):
    return math.log(p / (1 - p))


def set_cell(outputs, level, i, j, p, c, dists):
    outputs.cls_logits[level][0, 0, i, j] = logit(p)
    outputs.centerness[level][0, 0, i, j] = logit(c)
    outputs.bbox_dists[level][0, :, i, j] = torch.tensor(dists, dtype=torch.float32)


def run_inference(model, outputs, size=(64, 64), original=(128, 128)):
    images = ImageList(torch.zeros(1, 3, *size), [size])
    inputs = [{"height": original[0], "width": original[1]}]
    return model.inference(outputs, images, inputs)[0]["instances"]


def test_inference_thresholds_p_scores_p_times_c_and_keeps_top_points_by_p_times_c():
    m = tiny_model(**{"MODEL.FCOS.TEST_NMS_PRE": "2"}).eval()
    out = hand_outputs(m)
    # P3 points are at 4 + 8 j; distances are in stride units (x 8)
    set_cell(out, 0, 0, 0, 0.99, 0.001, [0.5, 0.5, 0.5, 0.5])  # p c = 0.00099: 3rd by p c
    set_cell(out, 0, 2, 2, 0.5, 0.5, [0.5, 0.5, 0.5, 0.5])  # p c = 0.25
    set_cell(out, 0, 5, 5, 0.6, 0.6, [0.5, 0.5, 1.0, 1.0])  # p c = 0.36
    set_cell(out, 1, 0, 0, 0.9, 0.01, [0.25, 0.25, 0.25, 0.25])  # P4: p c = 0.009, p > 0.05
    set_cell(out, 1, 3, 3, 0.04, 0.99, [0.25, 0.25, 0.25, 0.25])  # p = 0.04 <= 0.05: dropped
    inst = run_inference(m, out)
    assert inst.image_size == (128, 128)
    assert inst.scores.tolist() == pytest.approx([0.36, 0.25, 0.009], rel=1e-5)
    # (44, 44) -+ (4, 4, 8, 8) px, (20, 20) -+ 4 px, (8, 8) -+ 4 px; original = 2 x input
    expected = torch.tensor([[40.0, 40.0, 52.0, 52.0], [16.0, 16.0, 24.0, 24.0],
                             [4.0, 4.0, 12.0, 12.0]]) * 2
    assert torch.allclose(inst.pred_boxes.tensor, expected)
    assert (inst.pred_classes == 0).all()


def test_inference_clips_to_the_input_and_suppresses_overlaps():
    m = tiny_model().eval()
    out = hand_outputs(m)
    set_cell(out, 0, 7, 7, 0.9, 0.9, [1.0, 1.0, 3.0, 3.0])  # (60, 60): x2 = 84 -> clipped 64
    set_cell(out, 0, 7, 6, 0.8, 0.8, [1.0, 1.0, 3.0, 3.0])  # (52, 60): IoU 0.6 with the first
    set_cell(out, 0, 0, 7, 0.7, 0.7, [0.5, 0.5, 0.5, 0.5])  # far away: kept
    inst = run_inference(m, out, original=(64, 64))
    assert inst.scores.tolist() == pytest.approx([0.81, 0.49], rel=1e-5)
    assert inst.pred_boxes.tensor[0].tolist() == [52.0, 52.0, 64.0, 64.0]


def batch(boxes_per_image):
    inputs = []
    for boxes in boxes_per_image:
        inst = Instances((64, 64))
        inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.gt_classes = torch.zeros(len(inst.gt_boxes), dtype=torch.long)
        inputs.append({"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8),
                       "instances": inst})
    return inputs


def test_no_target_batch_has_zero_box_losses_and_gradients_flow():
    m = tiny_model().train()
    with EventStorage():
        losses = m(batch([[], []]))
    assert losses["loss_bbox"].item() == 0 and losses["loss_centerness"].item() == 0
    assert losses["loss_cls"].item() > 0
    sum(losses.values()).backward()
    with EventStorage() as storage:
        losses = m(batch([[[30.0, 30.0, 33.0, 32.0]], []]))
        assert storage.history("fcos/num_pos").latest() >= 6  # RFLA top-6, ties included
    sum(losses.values()).backward()
    assert m.head.conv_centerness.weight.grad.abs().sum() > 0
    assert m.head.scales[0].scale.grad.abs() > 0


def test_focal_loss_is_divided_by_the_number_of_positives():
    m = tiny_model().train()
    data = batch([[[30.0, 30.0, 33.0, 32.0]]])
    with EventStorage() as storage:
        one = m(data)["loss_cls"].item()
        num_pos = storage.history("fcos/num_pos").latest()
        two = m(data + batch([[[30.0, 30.0, 33.0, 32.0]]]))["loss_cls"].item()
    # a second image with the same target doubles positives and (almost) the focal sum
    assert num_pos > 0 and two == pytest.approx(one, rel=0.05)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="RFLA.TRF"):
        tiny_model(**{"MODEL.FCOS.RFLA.TRF": "[91.0, 267.0]"})
    with pytest.raises(ValueError, match="ASSIGNER"):
        tiny_model(**{"MODEL.FCOS.ASSIGNER": "atss"})
