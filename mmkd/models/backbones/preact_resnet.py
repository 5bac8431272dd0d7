"""Pre-activation ResNet for CIFAR (He et al., "Identity Mappings in Deep Residual Networks", 2016).

ResNet-1001 is the NST paper's CIFAR teacher: bottleneck blocks, depth = 9n + 2 (n = 111 per stage),
stages of 64 / 128 / 256 output channels at 32 / 16 / 8 pixels. Depth 6n + 2 (e.g. 110) uses basic
blocks with 16 / 32 / 64 channels. After the last stage come the final ``norm`` (the paper's tap:
its batch-normalised output before ReLU, 256 x 8 x 8 for ResNet-1001) and ``relu``.
"""
from typing import Optional, Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmkd.registry import MODELS


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the shortcut."""
    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
                         if stride != 1 or in_channels != out_channels else None)

    def residual(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu(self.bn2(self.conv1(x))))

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        # The projection shortcut takes the pre-activated input, as in the paper's code.
        identity = self.shortcut(pre) if self.shortcut is not None else x
        return self.residual(pre) + identity


class PreActBottleneck(PreActBlock):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1 (4x), plus the shortcut. ``style='caffe'``
    (the official resnet-pre-act.lua) strides the first 1x1 convolution, ``'pytorch'`` the 3x3 (as
    torchvision and mmdet's default do); the parameters are the same, the networks are not."""
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, style: str = 'caffe') -> None:
        super().__init__(in_channels, planes, stride)
        stride_1x1, stride_3x3 = (stride, 1) if style == 'caffe' else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, planes, 1, stride_1x1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride_3x3, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)

    def residual(self, x: Tensor) -> Tensor:
        x = self.conv2(self.relu(self.bn2(self.conv1(x))))
        return self.conv3(self.relu(self.bn3(x)))


@MODELS.register_module()
class PreActResNet(BaseModule):
    """Pre-activation ResNet for 32 x 32 inputs; returns the stages in ``out_indices`` (0-2), the
    last one after the final BN-ReLU. ``style`` places a bottleneck's stride: 'caffe' (default, as
    the official code) on its first 1x1 convolution, 'pytorch' on its 3x3."""

    def __init__(self, depth: int = 1001, out_indices: Sequence[int] = (2,), style: str = 'caffe',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg or [dict(type='Kaiming', layer='Conv2d'),
                                               dict(type='Constant', val=1, layer='BatchNorm2d')])
        if (depth - 2) % 9 == 0 and depth >= 164:
            block, blocks_per_stage = PreActBottleneck, (depth - 2) // 9
        elif (depth - 2) % 6 == 0:
            block, blocks_per_stage = PreActBlock, (depth - 2) // 6
        else:
            raise ValueError(f'PreActResNet depth must be 9n + 2 (bottleneck, >= 164) or 6n + 2, got {depth}.')
        if style not in ('caffe', 'pytorch'):
            raise ValueError(f"PreActResNet style must be 'caffe' or 'pytorch', got {style!r}.")
        if not set(out_indices) <= {0, 1, 2} or not out_indices:
            raise ValueError(f'PreActResNet out_indices must be a non-empty subset of (0, 1, 2), got {out_indices}.')
        self.out_indices = tuple(out_indices)
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        in_channels = 16
        for index, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            layers = []
            for i in range(blocks_per_stage):
                extra = dict(style=style) if block is PreActBottleneck else {}
                layers.append(block(in_channels, planes, stride if i == 0 else 1, **extra))
                in_channels = planes * block.expansion
            self.add_module(f'layer{index + 1}', nn.Sequential(*layers))
        self.out_channels = in_channels
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.conv1(x)
        outs = []
        for index in range(3):
            x = getattr(self, f'layer{index + 1}')(x)
            if index == 2:
                x = self.relu(self.norm(x))
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
