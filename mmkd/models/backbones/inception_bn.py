"""BN-Inception (Ioffe & Szegedy, 2015) as MXNet's Inception-BN, the NST paper's student.

Every block concatenates its branches' batch-normalised outputs *before* ReLU into ``preact``
(an identity module, so it can be tapped: ``backbone.in5b.preact`` is the paper's 1024 x 7 x 7 tap)
and applies one ReLU to the concatenation, which equals a ReLU at the end of every branch.

Shapes at 224 x 224 (ImageNet variant). pool1 and pool2 are 3x3/2 max pools without padding that
round down, as MXNet's ``Pooling`` does by default (``pooling_convention='valid'``); ``ceil_mode=True``
rounds up instead (Caffe's BN-Inception: 56 and 28). Both reach 14 and 7 after the stride-2 blocks:

=======  ==========================================  =================
stage    modules                                      output
=======  ==========================================  =================
0        conv1 (7x7/2: 112), pool1, conv2_red, conv2  192 x 55 x 55
1        pool2, in3a (256), in3b                      320 x 27 x 27
2        in3c (576, /2), in4a, in4b (576), in4c, in4d 608 x 14 x 14
3        in4e (1056, /2), in5a, in5b                  1024 x 7 x 7
=======  ==========================================  =================

The CIFAR variant (``cifar=True``, for 32 x 32 inputs) uses a 3x3 stride-1 conv1 and drops pool1
and pool2: 192 x 32 x 32, 320 x 32 x 32, 608 x 16 x 16, 1024 x 8 x 8.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmkd.registry import MODELS


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, norm_cfg: dict, stride: int = 1,
            relu: bool = True) -> ConvModule:
    return ConvModule(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                      norm_cfg=norm_cfg, act_cfg=dict(type='ReLU') if relu else None)


class InceptionBlock(BaseModule):
    """Branches -> ``preact`` (concatenated pre-ReLU outputs) -> ``relu``."""

    def __init__(self, branches: List[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.preact = nn.Identity()
        self.relu = nn.ReLU()  # not in place: the tapped preact tensor must stay intact

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.preact(torch.cat([branch(x) for branch in self.branches], dim=1)))


def inception_a(in_channels: int, c1: int, c3_red: int, c3: int, d3_red: int, d3: int, pool: str, proj: int,
                norm_cfg: dict) -> Tuple[InceptionBlock, int]:
    """1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | 3x3 pool -> 1x1, all stride 1."""
    pool_layer = nn.AvgPool2d(3, 1, 1) if pool == 'avg' else nn.MaxPool2d(3, 1, 1)
    block = InceptionBlock([
        conv_bn(in_channels, c1, 1, norm_cfg, relu=False),
        nn.Sequential(conv_bn(in_channels, c3_red, 1, norm_cfg), conv_bn(c3_red, c3, 3, norm_cfg, relu=False)),
        nn.Sequential(conv_bn(in_channels, d3_red, 1, norm_cfg), conv_bn(d3_red, d3, 3, norm_cfg),
                      conv_bn(d3, d3, 3, norm_cfg, relu=False)),
        nn.Sequential(pool_layer, conv_bn(in_channels, proj, 1, norm_cfg, relu=False)),
    ])
    return block, c1 + c3 + d3 + proj


def inception_b(in_channels: int, c3_red: int, c3: int, d3_red: int, d3: int,
                norm_cfg: dict) -> Tuple[InceptionBlock, int]:
    """Grid reduction: 1x1 -> 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max pool (the ReLU'd input)."""
    block = InceptionBlock([
        nn.Sequential(conv_bn(in_channels, c3_red, 1, norm_cfg),
                      conv_bn(c3_red, c3, 3, norm_cfg, stride=2, relu=False)),
        nn.Sequential(conv_bn(in_channels, d3_red, 1, norm_cfg), conv_bn(d3_red, d3, 3, norm_cfg),
                      conv_bn(d3, d3, 3, norm_cfg, stride=2, relu=False)),
        nn.MaxPool2d(3, 2, 1),
    ])
    return block, c3 + d3 + in_channels


# name: (kind, settings) in MXNet's symbol_inception-bn order.
INCEPTION_BLOCKS: Dict[str, tuple] = {
    'in3a': ('a', (64, 64, 64, 64, 96, 'avg', 32)),
    'in3b': ('a', (64, 64, 96, 64, 96, 'avg', 64)),
    'in3c': ('b', (128, 160, 64, 96)),
    'in4a': ('a', (224, 64, 96, 96, 128, 'avg', 128)),
    'in4b': ('a', (192, 96, 128, 96, 128, 'avg', 128)),
    'in4c': ('a', (160, 128, 160, 128, 160, 'avg', 128)),
    'in4d': ('a', (96, 128, 192, 160, 192, 'avg', 128)),
    'in4e': ('b', (128, 192, 192, 256)),
    'in5a': ('a', (352, 192, 320, 160, 224, 'avg', 128)),
    'in5b': ('a', (352, 192, 320, 192, 224, 'max', 128)),
}


#: the blocks of each stage (stage 3 is also the C4 detector's RoI head, InceptionBNHead)
STAGES: Tuple[Tuple[str, ...], ...] = (
    ('conv1', 'pool1', 'conv2_red', 'conv2'),
    ('pool2', 'in3a', 'in3b'),
    ('in3c', 'in4a', 'in4b', 'in4c', 'in4d'),
    ('in4e', 'in5a', 'in5b'),
)


def add_inception_blocks(module: nn.Module, names: Sequence[str], channels: int, widen_factor: float,
                         norm_cfg: dict) -> Dict[str, int]:
    """Adds the named blocks of INCEPTION_BLOCKS to ``module`` in order; returns their output widths."""
    widths = {}
    for name in names:
        kind, settings = INCEPTION_BLOCKS[name]
        settings = [s if isinstance(s, str) else scaled(s, widen_factor) for s in settings]
        factory = inception_a if kind == 'a' else inception_b
        block, channels = factory(channels, *settings, norm_cfg=norm_cfg)
        module.add_module(name, block)
        widths[name] = channels
    return widths


def scaled(channels: int, widen_factor: float) -> int:
    return max(4, int(round(channels * widen_factor)))


@MODELS.register_module()
class InceptionBN(BaseModule):
    """BN-Inception backbone for classification and detection (mmdet-style arguments).

    Args:
        out_indices: stages whose outputs are returned (0-3, see the table above); (0, 1, 2, 3)
            gives 192/320/608/1024 channels at strides 4/8/16/32 for an FPN.
        frozen_stages: stages 0..frozen_stages are frozen (no gradient, BN in eval mode); -1: none.
        norm_eval: keep every BatchNorm in eval mode while training (detection fine-tuning).
        cifar: the 32 x 32 variant.
        widen_factor: multiplies every layer's width (rounded, at least 4), for small demos;
            ``out_channels`` gives the resulting stage widths (1.0: 192/320/608/1024).
        ceil_mode: pool1/pool2 round up (Caffe) instead of down (MXNet, the default).
        num_stages: build stages 0..num_stages-1 only; 3 for a C4 detector, whose RoI head
            (``mmkd.InceptionBNHead``) runs stage 3 on each RoI.
    """

    def __init__(self, out_indices: Sequence[int] = (3,), frozen_stages: int = -1, norm_eval: bool = False,
                 cifar: bool = False, widen_factor: float = 1.0, norm_cfg: Optional[dict] = None,
                 ceil_mode: bool = False, num_stages: int = 4, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg or [dict(type='Kaiming', layer='Conv2d'),
                                               dict(type='Constant', val=1, layer='_BatchNorm')])
        if not 1 <= num_stages <= 4:
            raise ValueError(f'InceptionBN num_stages must be 1..4, got {num_stages}.')
        if not set(out_indices) <= set(range(num_stages)) or not out_indices:
            raise ValueError(f'InceptionBN out_indices must be a non-empty subset of the {num_stages} stages '
                             f'{tuple(range(num_stages))}, got {out_indices}.')
        if not -1 <= frozen_stages < num_stages:
            raise ValueError(f'InceptionBN frozen_stages must be in -1..3, got {frozen_stages}.')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        norm_cfg = norm_cfg or dict(type='BN')

        def width(channels: int) -> int:
            return scaled(channels, widen_factor)

        stem = width(64)
        if cifar:
            self.conv1 = conv_bn(3, stem, 3, norm_cfg)
            self.pool1 = nn.Identity()
            self.pool2 = nn.Identity()
        else:
            self.conv1 = ConvModule(3, stem, 7, stride=2, padding=3, norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'))
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=ceil_mode)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=ceil_mode)
        self.conv2_red = conv_bn(stem, stem, 1, norm_cfg)
        channels = width(192)
        self.conv2 = conv_bn(stem, channels, 3, norm_cfg)
        stage_channels = {'conv2': channels}
        self.stages = [list(stage) for stage in STAGES[:num_stages]]
        blocks = [name for stage in self.stages for name in stage if name in INCEPTION_BLOCKS]
        stage_channels.update(add_inception_blocks(self, blocks, channels, widen_factor, norm_cfg))
        self.out_channels = tuple(stage_channels[stage[-1]] for stage in self.stages)
        self._freeze_stages()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for index, stage in enumerate(self.stages):
            for name in stage:
                x = getattr(self, name)(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for stage in self.stages[:self.frozen_stages + 1]:
            for name in stage:
                module = getattr(self, name)
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> 'InceptionBN':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


@MODELS.register_module()
class InceptionBNHead(BaseModule):
    """Inception-BN's last stage (in4e, in5a, in5b) as the RoI head of a C4 Faster R-CNN, the way
    mx-rcnn and mmdet's ``faster-rcnn_r50-caffe-c4`` use ResNet's last stage: RPN and RoI pooling
    on stage 2 (in4d, stride 16), this head on each 14 x 14 RoI feature (-> 1024 x 7 x 7)::

        backbone=dict(type='mmkd.InceptionBN', num_stages=3, out_indices=(2,), ...),
        roi_head=dict(shared_head=dict(type='mmkd.InceptionBNHead', norm_eval=True, init_cfg=dict(
            type='Pretrained', prefix='backbone.', checkpoint='student.pth')), ...)

    Its blocks carry the backbone's names, so a pretrained Inception-BN's ``backbone.in4e.*`` ...
    keys load into it with ``prefix='backbone.'``.
    """

    def __init__(self, widen_factor: float = 1.0, norm_eval: bool = True, norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg or [dict(type='Kaiming', layer='Conv2d'),
                                               dict(type='Constant', val=1, layer='_BatchNorm')])
        self.norm_eval = norm_eval
        _, (c1, _, c3, _, d3, _, proj) = INCEPTION_BLOCKS['in4d']  # the stage-2 output feeds this head
        in_channels = sum(scaled(c, widen_factor) for c in (c1, c3, d3, proj))
        widths = add_inception_blocks(self, STAGES[3], in_channels, widen_factor, norm_cfg or dict(type='BN'))
        self.in_channels, self.out_channels = in_channels, widths[STAGES[3][-1]]

    def forward(self, x: Tensor) -> Tensor:
        for name in STAGES[3]:
            x = getattr(self, name)(x)
        return x

    def train(self, mode: bool = True) -> 'InceptionBNHead':
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
