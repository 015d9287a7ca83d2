"""Operations as a small dict of constructors ``OPS[name](C, stride, affine) -> nn.Module`` (DARTS' style).

Implementations follow DARTS: sep_conv = two stacked (ReLU, depthwise kxk, pointwise 1x1, BN); dil_conv =
ReLU, depthwise kxk dilation 2, pointwise, BN; conv = ReLU, kxk conv, BN; skip with stride 2 = factorized reduce;
null = zeros. ``pool_bn=True`` (the supernet) follows pooling with a BN, as the NAT authors do.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ReLUConvBN(nn.Sequential):
    def __init__(self, C_in, C_out, kernel, stride, padding, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    def __init__(self, C_in, C_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    def __init__(self, C_in, C_out, kernel, stride, padding, affine=True):
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine), DilConv(C_in, C_out, kernel, 1, padding, 1, affine)
        )


class FacConv(nn.Sequential):
    """Factorized kxk conv: ReLU, 1xk then kx1 (or kx1 then 1xk), BN."""

    def __init__(self, C, k, stride, first_row=True, affine=True):
        row = nn.Conv2d(C, C, (1, k), stride=(1, stride), padding=(0, k // 2), bias=False)
        col = nn.Conv2d(C, C, (k, 1), stride=(stride, 1), padding=(k // 2, 0), bias=False)
        super().__init__(
            nn.ReLU(inplace=False), *((row, col) if first_row else (col, row)), nn.BatchNorm2d(C, affine=affine)
        )


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Stride-2 skip: two 1x1 stride-2 convs on inputs shifted by one pixel, concatenated."""

    def __init__(self, C_in, C_out, affine=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out - C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        y = x[:, :, 1:, 1:]
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            y = F.pad(y, (0, 1, 0, 1))  # on odd inputs keep both halves the same size
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(y)], dim=1))


class Pool2x2(nn.Module):
    """2x2 pooling that keeps the 'same' output size (stride 1) or halves it (stride 2), padding right/bottom."""

    def __init__(self, kind, stride):
        super().__init__()
        self.pool = nn.MaxPool2d(2, stride) if kind == "max" else nn.AvgPool2d(2, stride)
        self.stride = stride

    def forward(self, x):
        pad = 1 if self.stride == 1 else (x.shape[-1] % 2)
        return self.pool(F.pad(x, (0, pad, 0, pad), mode="replicate") if pad else x)


def _pool(kind, k, stride, C, affine, bn):
    p = nn.MaxPool2d(k, stride, k // 2) if kind == "max" else nn.AvgPool2d(k, stride, k // 2, count_include_pad=False)
    return nn.Sequential(p, nn.BatchNorm2d(C, affine=False)) if bn else p


OPS = {
    "null": lambda C, s, a, bn=False: Zero(s),
    "none": lambda C, s, a, bn=False: Zero(s),
    "skip_connect": lambda C, s, a, bn=False: Identity() if s == 1 else FactorizedReduce(C, C, a),
    "max_pool_2x2": lambda C, s, a, bn=False: Pool2x2("max", s),
    "avg_pool_2x2": lambda C, s, a, bn=False: Pool2x2("avg", s),
    "max_pool_3x3": lambda C, s, a, bn=False: _pool("max", 3, s, C, a, bn),
    "max_pool_5x5": lambda C, s, a, bn=False: _pool("max", 5, s, C, a, bn),
    "avg_pool_3x3": lambda C, s, a, bn=False: _pool("avg", 3, s, C, a, bn),
    "avg_pool_5x5": lambda C, s, a, bn=False: _pool("avg", 5, s, C, a, bn),
    "sep_conv_3x3": lambda C, s, a, bn=False: SepConv(C, C, 3, s, 1, a),
    "sep_conv_5x5": lambda C, s, a, bn=False: SepConv(C, C, 5, s, 2, a),
    "sep_conv_7x7": lambda C, s, a, bn=False: SepConv(C, C, 7, s, 3, a),
    "dil_conv_3x3": lambda C, s, a, bn=False: DilConv(C, C, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda C, s, a, bn=False: DilConv(C, C, 5, s, 4, 2, a),
    "conv_1x1": lambda C, s, a, bn=False: ReLUConvBN(C, C, 1, s, 0, a),
    "conv_3x3": lambda C, s, a, bn=False: ReLUConvBN(C, C, 3, s, 1, a),
    "conv_5x5": lambda C, s, a, bn=False: ReLUConvBN(C, C, 5, s, 2, a),
    "conv_1x3_3x1": lambda C, s, a, bn=False: FacConv(C, 3, s, True, a),
    "conv_1x7_7x1": lambda C, s, a, bn=False: FacConv(C, 7, s, True, a),
    "conv_7x1_1x7": lambda C, s, a, bn=False: FacConv(C, 7, s, False, a),
    # NAS-Bench-201 spellings
    "nor_conv_1x1": lambda C, s, a, bn=False: ReLUConvBN(C, C, 1, s, 0, a),
    "nor_conv_3x3": lambda C, s, a, bn=False: ReLUConvBN(C, C, 3, s, 1, a),
}
