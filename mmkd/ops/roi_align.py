"""``roi_align_forward`` / ``roi_align_backward`` (mmcv's average mode) from torchvision.

torchvision's RoIAlign samples the same bilinear points as mmcv's (``aligned`` shifts by half a
pixel, ``sampling_ratio=0`` takes ``ceil(roi_size / output_size)`` points per bin) and its forward
and gradient equal mmcv's compiled CPU kernel bit for bit (tests/test_ops.py). mmcv's max mode
(``pool_mode='max'``) has no torchvision counterpart and raises.

Half-precision inputs (AMP) are computed in float32 and written back in their own dtype, as
torchvision's autocast rule does; mmcv's CUDA kernel computes in half, so such outputs agree with
it to half's rounding, not bit for bit.
"""
import torch
from torch import Tensor
from torchvision.ops import roi_align

from .unsupported import CompiledOpsRequired

AVG_POOL = 1


def _compute_dtype(input: Tensor) -> torch.dtype:
    return torch.float64 if input.dtype == torch.float64 else torch.float32


def _check_avg(pool_mode: int) -> None:
    if pool_mode != AVG_POOL:
        raise CompiledOpsRequired("roi_align with pool_mode='max'")


def roi_align_forward(input: Tensor, rois: Tensor, output: Tensor, argmax_y: Tensor, argmax_x: Tensor,
                      aligned_height: int, aligned_width: int, spatial_scale: float,
                      sampling_ratio: int, pool_mode: int, aligned: bool) -> None:
    """Fills ``output`` (R, C, aligned_height, aligned_width) in place, as mmcv's kernel does."""
    _check_avg(pool_mode)
    dtype = _compute_dtype(input)
    result = roi_align(input.to(dtype), rois.to(dtype), (aligned_height, aligned_width),
                       spatial_scale=spatial_scale, sampling_ratio=sampling_ratio, aligned=aligned)
    output.copy_(result)


def roi_align_backward(grad_output: Tensor, rois: Tensor, argmax_y: Tensor, argmax_x: Tensor,
                       grad_input: Tensor, aligned_height: int, aligned_width: int,
                       spatial_scale: float, sampling_ratio: int, pool_mode: int,
                       aligned: bool) -> None:
    """Fills ``grad_input`` (the input's shape, zeros on entry) in place."""
    _check_avg(pool_mode)
    dtype = _compute_dtype(grad_input)
    batch, channels, height, width = grad_input.shape
    grad = torch.ops.torchvision._roi_align_backward(
        grad_output.to(dtype), rois.to(dtype), spatial_scale, aligned_height, aligned_width,
        batch, channels, height, width, sampling_ratio, aligned)
    grad_input.copy_(grad)
