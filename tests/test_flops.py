"""mmcv-style FLOP counting (OSCAR spec 9.2), worked out by hand on a small network."""
import torch
import torch.nn as nn

from deepinfrared_d2.utils.flops import count_gflops


def test_mmcv_conventions_on_a_hand_counted_network():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=True),  # 16x16 output
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),  # -> 8x8
        nn.Conv2d(8, 4, 1, bias=False),
        nn.GroupNorm(2, 4),
        nn.Upsample(scale_factor=2),  # interpolation: not counted
    ).eval()
    conv1 = 8 * 16 * 16 * (3 * 3 * 3) + 8 * 16 * 16  # MACs + bias adds
    bn = 2 * 8 * 16 * 16  # affine norm: 2 x input elements
    relu = 8 * 16 * 16  # output elements
    pool = 8 * 16 * 16  # input elements
    conv2 = 4 * 8 * 8 * 8  # no bias
    gn = 2 * 4 * 8 * 8
    expected = conv1 + bn + relu + pool + conv2 + gn
    assert count_gflops(net, (torch.zeros(1, 3, 16, 16),)) * 1e9 == expected
