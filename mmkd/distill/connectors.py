"""Connectors: trainable maps from a student feature to the teacher's shape (FitNet's regressor)."""
from typing import Optional

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

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
