"""Connectors: trainable maps from a student feature to the teacher's shape (FitNet's regressor,
MGD's masked generation block)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from mmkd.registry import MODELS


@MODELS.register_module()
class ConvConnector(ConvModule):
    """mmcv's ``ConvModule`` (as the backbones build their layers): a k x k conv (default 1 x 1) from
    ``in_channels`` to ``out_channels``, then the ``norm_cfg`` and ``act_cfg`` layers (the conv has a
    bias only without a norm layer; Kaiming-normal init, fan-out); with ``out_size`` the result is
    also resized (bilinear) to the teacher's H x W::

        connector=dict(type='mmkd.ConvConnector', in_channels=1024, out_channels=2048,
                       norm_cfg=dict(type='BN'), act_cfg=None)   # FitNet's regressor (the defaults)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 norm_cfg: Optional[dict] = dict(type='BN'), act_cfg: Optional[dict] = None,
                 out_size: Optional[tuple] = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.out_size = tuple(out_size) if out_size is not None else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'ConvConnector expects (N, {self.in_channels}, H, W) input, got '
                             f'{tuple(x.shape)}; set in_channels to the student feature\'s channels.')
        x = super().forward(x)
        if self.out_size is not None and tuple(x.shape[-2:]) != self.out_size:
            x = F.interpolate(x, size=self.out_size, mode='bilinear', align_corners=False)
        return x


@MODELS.register_module()
class MGDConnector(nn.Module):
    """MGD's student side (``mmkd.MGDLoss``): a 1 x 1 conv to the teacher's channels where they
    differ, then, in training, a random spatial mask that zeroes each position of each image with
    probability ``mask_ratio`` (the paper's lambda), then the generation block: 3 x 3 conv, ReLU,
    3 x 3 conv (the authors' layers)::

        connector=dict(type='mmkd.MGDConnector', in_channels=256, out_channels=256, mask_ratio=0.65)

    In eval mode nothing is masked.
    """

    def __init__(self, in_channels: int, out_channels: int, mask_ratio: float = 0.65) -> None:
        super().__init__()
        if not 0 <= mask_ratio < 1:
            raise ValueError(f'MGDConnector mask_ratio must be in [0, 1), got {mask_ratio}.')
        self.in_channels = in_channels
        self.mask_ratio = mask_ratio
        self.align = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.generation = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1))

    def random_mask(self, x: Tensor) -> Tensor:
        """(N, 1, H, W): 0 with probability mask_ratio, else 1."""
        keep = torch.rand(x.shape[0], 1, *x.shape[2:], device=x.device) >= self.mask_ratio
        return keep.to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'MGDConnector expects (N, {self.in_channels}, H, W) input, got '
                             f'{tuple(x.shape)}; set in_channels to the student feature\'s channels.')
        x = self.align(x)
        if self.training:
            x = x * self.random_mask(x)
        return self.generation(x)
