"""Hand-crafted macro networks (VGG, ResNet, ShuffleNet, MobileNetV2) whose every block is a genotype cell.

A :class:`MacroSpec` (plain data, ``natrl/handcrafted.py``) lists the stem, the stages (blocks, output width,
stride, expansion) and the head. Each block is one cell of the genotype (normal, or reduce where the block
changes resolution or width, as the NAT authors' cells do), built by :class:`BlockCell`:

- every node gets a width and a resolution from the family's *layout* (``LAYOUTS``): e.g. a MobileNetV2 block's
  nodes 2, 3, 4, 5 are (expanded, expanded at the output stride, output, output);
- every edge's op is built from its (input width, output width, stride) by :func:`edge_op`; ops follow the
  project's DARTS style (ReLU, conv, BN), which has the same params and MAdds as the originals' (conv, BN, ReLU);
- in the depthwise families (MobileNetV2, ShuffleNet) a separable / dilated op is the block's depthwise conv
  (its pointwise half is the next conv_1x1 edge) and ShuffleNet's conv_1x1 is a group conv after a channel
  shuffle; elsewhere they are DARTS' separable and dilated convs;
- a skip whose ends differ in width or resolution is a parameter-free shortcut (ResNet's option A: subsample,
  then pad channels with zeros or keep the first ones), so a skip costs nothing wherever the policy puts it;
  null is zeros of the target's shape. Node 0 is the block before the previous one (null in every original).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from natrl.cells import Cell, Genotype
from natrl.errors import NatrlError
from natrl.nets.ops import DilConv, ReLUConvBN, SepConv
from natrl.ops import OP_INFO


@dataclass(frozen=True)
class Stage:
    blocks: int  # cells in the stage (VGG: conv layers)
    channels: int  # output width of every block of the stage
    stride: int = 1  # applied once: first block (VGG: the last block's pooling)
    expansion: int = 1  # MobileNetV2's t


@dataclass(frozen=True)
class MacroSpec:
    """One hand-crafted network as plain data (widths at width multiplier 1)."""

    name: str
    cell: str  # registry name of the original cell (genotype)
    family: str  # key of LAYOUTS: vgg, resnet, bottleneck, mobilenetv2, shufflenet
    resolution: int  # input size (32 CIFAR, 224 ImageNet)
    stem: tuple[tuple, ...]  # ("conv", C, kernel, stride) or ("maxpool", kernel, stride)
    stages: tuple[Stage, ...]
    head_conv: int = 0  # a final 1x1 conv to this width (MobileNetV2: 1280), 0 = none
    hidden: tuple[int, ...] = ()  # classifier hidden layers (VGG)
    flatten: int = 1  # pool the last feature map to flatten x flatten before the classifier (ImageNet VGG: 7)
    groups: int = 1  # ShuffleNet's group count for its 1x1 convs
    quantum: int = 1  # widths stay multiples of this under a width multiplier


# Per family and cell kind: (width rule, at output resolution) of intermediate nodes 2, 3, 4, 5.
# Width rules: in = block input, out = block output, mid = expanded / bottleneck width, rest = out - in.
LAYOUTS: dict[str, dict[str, tuple[tuple[str, bool], ...]]] = {
    "vgg": {
        "normal": (("in", False), ("out", False), ("out", False), ("out", False)),
        "reduce": (("in", False), ("out", False), ("out", False), ("out", True)),  # pooling 4 -> 5 halves
    },
    "resnet": {k: (("in", False), ("out", True), ("out", True), ("out", True)) for k in ("normal", "reduce")},
    "bottleneck": {k: (("mid", False), ("mid", True), ("out", True), ("out", True)) for k in ("normal", "reduce")},
    "mobilenetv2": {k: (("mid", False), ("mid", True), ("out", True), ("out", True)) for k in ("normal", "reduce")},
    "shufflenet": {
        "normal": (("mid", False), ("mid", True), ("out", True), ("out", True)),
        "reduce": (("mid", False), ("mid", True), ("rest", True), ("in", True)),  # concat [4, 5] = out
    },
}
DEPTHWISE_FAMILIES = ("mobilenetv2", "shufflenet")


class Shortcut(nn.Module):
    """Parameter-free reshaping skip (ResNet option A): subsample by ``stride``, zero-pad or cut channels."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.c_out > self.c_in:
            return F.pad(x, (0, 0, 0, 0, 0, self.c_out - self.c_in))
        return x[:, : self.c_out] if self.c_out < self.c_in else x


class ZeroLike(nn.Module):
    """null: zeros of the target node's shape (width ``c_out``, input subsampled by ``stride``)."""

    def __init__(self, c_out: int, stride: int):
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x):
        x = x[:, :1, :: self.stride, :: self.stride]
        return x.new_zeros(x.shape[0], self.c_out, x.shape[2], x.shape[3])


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _depthwise(c_in: int, c_out: int, k: int, stride: int, dilation: int) -> nn.Module:
    pad = dilation * (k - 1) // 2
    dw = nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_in, k, stride, pad, dilation=dilation, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
    )
    return dw if c_in == c_out else nn.Sequential(dw, Shortcut(c_in, c_out, 1))


def _pool(op: str, k: int, stride: int) -> nn.Module:
    if op.startswith("max"):
        return nn.MaxPool2d(k, stride, k // 2)
    return nn.AvgPool2d(k, stride, k // 2, count_include_pad=False)


def edge_op(op: str, c_in: int, c_out: int, stride: int, family: str, groups: int = 1) -> nn.Module:
    """The module of one cell edge in a hand-crafted network (see the module docstring for the mapping)."""
    kind, k = OP_INFO[op]
    if kind == "null":
        return ZeroLike(c_out, stride)
    if kind == "skip":
        return Shortcut(c_in, c_out, stride) if (c_in, stride) != (c_out, 1) else nn.Identity()
    if kind == "pool":
        return nn.Sequential(_pool(op, k, stride), Shortcut(c_in, c_out, 1))
    if kind == "conv":
        if groups > 1 and k == 1:  # ShuffleNet: pointwise group conv, channels mixed by a shuffle first
            conv = nn.Conv2d(c_in, c_out, 1, stride, 0, groups=groups, bias=False)
            return nn.Sequential(ChannelShuffle(groups), nn.ReLU(inplace=False), conv, nn.BatchNorm2d(c_out))
        return ReLUConvBN(c_in, c_out, k, stride, k // 2)
    dilation = 2 if kind == "dil" else 1
    if kind in ("sep", "dil") and family in DEPTHWISE_FAMILIES:
        return _depthwise(c_in, c_out, k, stride, dilation)
    if kind == "sep":
        return SepConv(c_in, c_out, k, stride, k // 2)
    if kind == "dil":
        return DilConv(c_in, c_out, k, stride, k - 1, 2)
    raise NatrlError(f"op '{op}' has no hand-crafted realisation; use ops of the natpp vocabulary")


def node_widths(family: str, kind: str, c_in: int, c_out: int, expansion: int) -> list[tuple[int, bool]]:
    """(width, at output resolution) of the intermediate nodes of one block."""
    mid = c_in * expansion if family == "mobilenetv2" else c_out // 4
    width = {"in": c_in, "out": c_out, "mid": mid, "rest": c_out - c_in}
    return [(width[rule], reduced) for rule, reduced in LAYOUTS[family][kind]]


class BlockCell(nn.Module):
    """One block of a hand-crafted network: a genotype cell with per-node widths and strides, no preprocessing."""

    def __init__(self, cell: Cell, family: str, c_prev_prev: int, c_in: int, c_out: int, **shape):
        super().__init__()
        kind, stride, prev_stride = shape["kind"], shape["stride"], shape["prev_stride"]
        widths = [(c_prev_prev, False), (c_in, False)]
        widths += node_widths(family, kind, c_in, c_out, shape.get("expansion", 1))
        # resolution divisor of each node relative to node 0's input: node 0 is prev_stride finer than node 1
        scale = [1, prev_stride] + [prev_stride * (stride if red else 1) for _, red in widths[2:]]
        self.edges = [(src, dst) for _, src, dst in cell.edges]
        ops = []
        for op, src, dst in cell.edges:
            groups = shape.get("groups", 1) if not (shape.get("first") and src == 1) else 1
            ops.append(edge_op(op, widths[src][0], widths[dst][0], scale[dst] // scale[src], family, groups))
        self._ops = nn.ModuleList(ops)
        # c_{k-2} enters through a BN when an edge uses it (DARTS' preprocess0 without its 1x1 conv: 2C params, no
        # MAdds): unnormalised skips from two blocks back would compound into y_k = y_{k-1} + y_{k-2} + ...
        uses_node0 = any(src == 0 and OP_INFO[op].type != "null" for op, src, _ in cell.edges)
        self.pre0 = nn.BatchNorm2d(c_prev_prev) if uses_node0 else nn.Identity()
        self.num_nodes, self.concat = cell.num_nodes, list(cell.concat)
        self.c_out = sum(widths[i][0] for i in self.concat)

    def forward(self, s0, s1):
        states: list = [self.pre0(s0), s1] + [None] * (self.num_nodes - 2)
        for (src, dst), op in zip(self.edges, self._ops):
            h = op(states[src])
            states[dst] = h if states[dst] is None else states[dst] + h
        return torch.cat([states[i] for i in self.concat], dim=1) if len(self.concat) > 1 else states[self.concat[0]]


def scaled(c: int, width_mult: float, quantum: int) -> int:
    """A width under a width multiplier, kept a positive multiple of ``quantum`` (group convs need it)."""
    return max(quantum, int(round(c * width_mult / quantum)) * quantum)


def _stem(spec: MacroSpec, width_mult: float) -> tuple[nn.Sequential, int, int]:
    """(stem module, its output width, its total stride): convs are conv + BN (the cells' ops start with ReLU)."""
    layers: list[nn.Module] = []
    c, stride = 3, 1
    for kind, *args in spec.stem:
        if kind == "conv":
            width, k, s = scaled(args[0], width_mult, spec.quantum), args[1], args[2]
            layers += [nn.Conv2d(c, width, k, s, k // 2, bias=False), nn.BatchNorm2d(width)]
            c, stride = width, stride * s
        else:  # ("maxpool", k, s): the original's ReLU before its pooling
            layers += [nn.ReLU(inplace=False), nn.MaxPool2d(args[0], args[1], args[0] // 2)]
            stride *= args[1]
    return nn.Sequential(*layers), c, stride


def block_plan(spec: MacroSpec) -> list[dict]:
    """Every block's (kind, stride, widths) in order: which blocks take the reduce cell, and where strides go."""
    plan: list[dict] = []
    for stage in spec.stages:
        for i in range(stage.blocks):
            if spec.family == "vgg":  # VGG pools at the end of a stage
                reduce = i == stage.blocks - 1 and stage.stride > 1
            else:
                reduce = i == 0 and (stage.stride > 1 or not plan or plan[-1]["c_out"] != stage.channels)
            stride = stage.stride if reduce else 1
            plan.append(
                {
                    "kind": "reduce" if reduce else "normal",
                    "stride": stride,
                    "c_out": stage.channels,
                    "expansion": stage.expansion,
                }
            )
    return plan


class HandcraftedNet(nn.Module):
    """A hand-crafted network (``spec``) whose blocks are the cells of ``genotype``; forward -> (logits, None)."""

    def __init__(self, spec: MacroSpec, genotype: Genotype, num_classes: int = 10, width_mult: float = 1.0):
        super().__init__()
        self.spec = spec
        self.stem, c, _ = _stem(spec, width_mult)
        self.cells = nn.ModuleList()
        c_prev_prev, prev_stride = c, 1
        for b, block in enumerate(block_plan(spec)):
            cell = genotype.reduce if block["kind"] == "reduce" else genotype.normal
            assert cell is not None
            c_out = scaled(block["c_out"], width_mult, spec.quantum)
            shape = {k: v for k, v in block.items() if k != "c_out"}
            shape.update(prev_stride=prev_stride, groups=spec.groups, first=b == 0)
            module = BlockCell(cell, spec.family, c_prev_prev, c, c_out, **shape)
            self.cells.append(module)
            c_prev_prev, c, prev_stride = c, module.c_out, block["stride"]
        self.head = self._head(c, width_mult)
        self.pool = nn.AdaptiveAvgPool2d(spec.flatten)
        self.classifier = self._classifier(self._head_width(c, width_mult) * spec.flatten**2, num_classes, width_mult)
        self.drop_path_prob = 0.0  # train_eval sets it; blocks of hand-crafted networks do not drop paths

    def _head_width(self, c: int, width_mult: float) -> int:
        return scaled(self.spec.head_conv, max(width_mult, 1.0), 1) if self.spec.head_conv else c

    def _head(self, c: int, width_mult: float) -> nn.Module:
        """ReLU after the last block; MobileNetV2's 1x1 conv to 1280 (kept at >= 1280 under a width multiplier)."""
        if not self.spec.head_conv:
            return nn.ReLU(inplace=False)
        w = self._head_width(c, width_mult)
        return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())

    def _classifier(self, c: int, num_classes: int, width_mult: float) -> nn.Sequential:
        layers: list[nn.Module] = []
        for h in self.spec.hidden:
            w = scaled(h, width_mult, 1)
            layers += [nn.Linear(c, w), nn.ReLU(inplace=True), nn.Dropout(0.5)]
            c = w
        return nn.Sequential(*layers, nn.Linear(c, num_classes))

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(self.head(s1)).flatten(1)), None
