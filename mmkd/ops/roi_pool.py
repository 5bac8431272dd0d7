"""``roi_pool_forward`` / ``roi_pool_backward``: a port of mmcv's RoIPool kernel.

mmcv has RoIPool only on CUDA (mmcv/ops/csrc/common/cuda/roi_pool_cuda_kernel.cuh), and it is not
torchvision's ``roi_pool``: mmcv scales unrounded corners, ``x1 * s`` to ``(x2 + 1) * s``, and cuts
bins at ``floor(p * bin + x1)`` / ``ceil((p + 1) * bin + x1)``, while torchvision rounds the corners
first. So this is mmcv's arithmetic in torch: each bin holds the maximum of its window (the first
one in row-major order on ties, as the kernel's strict ``>`` scan keeps), an empty window gives 0
and argmax -1, and a RoI of non-positive width or height is skipped, leaving the caller's zeros in
``output`` *and in* ``argmax`` (so, as in mmcv, its gradient lands on element 0 of its map).
One RoI per step: meant for legacy RoIPool configs, not for speed.
"""
import math

import torch
from torch import Tensor

FLT_MAX = torch.finfo(torch.float32).max


def _bin_edges(start: Tensor, size: Tensor, bins: int, limit: int) -> tuple:
    """mmcv's bin windows along one axis: [floor(p*bin + start), ceil((p+1)*bin + start)), clipped."""
    step = size / bins
    p = torch.arange(bins, dtype=start.dtype, device=start.device)
    lower = torch.floor(p * step + start).long().clamp(0, limit)
    upper = torch.ceil((p + 1) * step + start).long().clamp(0, limit)
    return lower, upper


def _window_max(values: Tensor, lower: Tensor, upper: Tensor) -> tuple:
    """Max and first argmax of ``values`` (..., L) over each window [lower[k], upper[k])."""
    positions = torch.arange(values.shape[-1], device=values.device)
    inside = (positions >= lower[:, None]) & (positions < upper[:, None])        # (K, L)
    masked = torch.where(inside, values.unsqueeze(-2), values.new_tensor(-math.inf))  # (..., K, L)
    return masked.max(-1).values, masked.argmax(-1)


def roi_pool_forward(input: Tensor, rois: Tensor, output: Tensor, argmax: Tensor, pooled_height: int,
                     pooled_width: int, spatial_scale: float) -> None:
    """Fills ``output`` (R, C, ph, pw) and ``argmax`` (int32, flat h*W + w, -1 when empty)."""
    _, _, height, width = input.shape
    scaled = rois.to(input.dtype if input.dtype == torch.float64 else torch.float32)
    for r in range(rois.shape[0]):
        index, x1, y1, x2, y2 = scaled[r]
        x1, y1 = x1 * spatial_scale, y1 * spatial_scale
        x2, y2 = (x2 + 1) * spatial_scale, (y2 + 1) * spatial_scale
        if not bool((x2 - x1 > 0) & (y2 - y1 > 0)):
            continue
        xs, xe = _bin_edges(x1, x2 - x1, pooled_width, width)
        ys, ye = _bin_edges(y1, y2 - y1, pooled_height, height)
        feature = input[int(index)].to(scaled.dtype)                       # (C, H, W)
        row_max, row_arg = _window_max(feature, xs, xe)                    # (C, H, pw)
        value, h = _window_max(row_max.transpose(1, 2), ys, ye)           # (C, pw, ph)
        w = row_arg.transpose(1, 2).gather(2, h)                           # column of that row
        value, h, w = value.transpose(1, 2), h.transpose(1, 2), w.transpose(1, 2)
        empty = (ye <= ys)[:, None] | (xe <= xs)[None, :]                  # (ph, pw)
        found = value > -FLT_MAX                                           # the kernel's start value
        output[r] = torch.where(empty, 0.0, value.clamp(min=-FLT_MAX)).to(output.dtype)
        argmax[r] = torch.where(found & ~empty, h * width + w, -1).to(argmax.dtype)


def roi_pool_backward(grad_output: Tensor, rois: Tensor, argmax: Tensor, grad_input: Tensor,
                      pooled_height: int, pooled_width: int, spatial_scale: float) -> None:
    """Adds each bin's gradient to the input element its argmax names (``grad_input`` starts at 0)."""
    batch, channels, height, width = grad_input.shape
    images = rois[:, 0].long()[:, None, None, None].expand_as(argmax)
    planes = torch.arange(channels, device=argmax.device)[None, :, None, None].expand_as(argmax)
    hit = argmax >= 0
    flat = grad_input.view(batch * channels, height * width)
    flat.index_put_(((images * channels + planes)[hit], argmax.long()[hit]),
                    grad_output[hit].to(grad_input.dtype), accumulate=True)
