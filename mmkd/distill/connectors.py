"""Connectors: trainable maps from a student feature to the teacher's shape (FitNet's regressor)."""
from typing import Optional

from torch import Tensor, nn
import torch.nn.functional as F

from mmkd.registry import MODELS


@MODELS.register_module()
class ConvConnector(nn.Module):
    """k x k conv (default 1 x 1) + BatchNorm from ``in_channels`` to ``out_channels``; with
    ``out_size`` the result is also resized (bilinear) to the teacher's H x W."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, norm: bool = True,
                 out_size: Optional[tuple] = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              bias=not norm)
        self.bn = nn.BatchNorm2d(out_channels) if norm else nn.Identity()
        self.out_size = tuple(out_size) if out_size is not None else None
        nn.init.kaiming_normal_(self.conv.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.conv.in_channels:
            raise ValueError(f'ConvConnector expects (N, {self.conv.in_channels}, H, W) input, got '
                             f'{tuple(x.shape)}; set in_channels to the student feature\'s channels.')
        x = self.bn(self.conv(x))
        if self.out_size is not None and tuple(x.shape[-2:]) != self.out_size:
            x = F.interpolate(x, size=self.out_size, mode='bilinear', align_corners=False)
        return x
