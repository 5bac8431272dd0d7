"""The CIFAR ResNets of He et al. (2016, section 4.2) that FSP's CIFAR table uses (Yim et al. 2017):
a 3x3 conv with 16 channels, then three stages of n basic blocks with 16 / 32 / 64 channels at
32 / 16 / 8 pixels, depth 6n + 2 (ResNet-8, -14, -26, -32, ...). The stage-entry shortcut that halves
the map and doubles the width is He et al.'s option A on CIFAR (identity, subsampled, zero-padded
channels: no parameters) or option B (1x1 conv + BN).
"""
from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmkd.registry import MODELS


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU, conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: str, norm_cfg: dict) -> None:
        super().__init__()
        self.conv1 = ConvModule(in_channels, channels, 3, stride, 1, norm_cfg=norm_cfg)
        self.conv2 = ConvModule(channels, channels, 3, 1, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.relu = nn.ReLU()
        self.stride, self.pad = stride, channels - in_channels
        self.projection = None
        if (stride != 1 or self.pad) and shortcut == 'B':
            self.projection = ConvModule(in_channels, channels, 1, stride, norm_cfg=norm_cfg, act_cfg=None)

    def shortcut(self, x: Tensor) -> Tensor:
        if self.projection is not None:
            return self.projection(x)
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.pad)) if self.pad else x

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


@MODELS.register_module()
class CifarResNet(BaseModule):
    """``dict(type='CifarResNet', depth=26)``: returns the stages in ``out_indices`` (0-2), with
    16 / 32 / 64 channels. Taps for FSP: ``backbone.layer<k>`` (``io='input'`` for a stage's entry)."""

    #: depth -> basic blocks per stage (depth = 6n + 2)
    arch_settings = {8: 1, 14: 2, 20: 3, 26: 4, 32: 5, 44: 7, 56: 9, 110: 18}
    stage_channels = (16, 32, 64)

    def __init__(self, depth: int, out_indices: Sequence[int] = (2,), shortcut: str = 'A',
                 norm_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg or [dict(type='Kaiming', layer='Conv2d'),
                                               dict(type='Constant', val=1, layer='_BatchNorm')])
        if depth not in self.arch_settings:
            raise ValueError(f'CifarResNet depth must be one of {sorted(self.arch_settings)}, got {depth}.')
        if shortcut not in ('A', 'B'):
            raise ValueError(f"CifarResNet shortcut must be 'A' (zero padding) or 'B' (projection), got {shortcut!r}.")
        if not out_indices or not set(out_indices) <= {0, 1, 2}:
            raise ValueError(f'CifarResNet out_indices must be a non-empty subset of (0, 1, 2), got {out_indices}.')
        norm_cfg = norm_cfg or dict(type='BN')
        self.out_indices = tuple(out_indices)
        self.stem = ConvModule(3, 16, 3, 1, 1, norm_cfg=norm_cfg)
        in_channels = 16
        for index, channels in enumerate(self.stage_channels):
            blocks = []
            for i in range(self.arch_settings[depth]):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_channels, channels, stride, shortcut, norm_cfg))
                in_channels = channels
            self.add_module(f'layer{index + 1}', nn.Sequential(*blocks))
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.stem(x)
        outs = []
        for index in range(3):
            x = getattr(self, f'layer{index + 1}')(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
