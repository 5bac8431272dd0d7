"""``nms`` as mmcv's compiled kernels compute it (mmcv/ops/csrc/pytorch/{cpu/nms.cpp,cuda/nms_cuda.cu}).

Both kernels sort the boxes with ``scores.sort(0, descending=True)`` on the boxes' device and keep a
box unless a kept box before it overlaps it too much, where (all in float32)

    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    inter = max(0, min(x2) - max(x1) + offset) * max(0, min(y2) - max(y1) + offset)
    union = area_i + area_j - inter
    CPU kernel:   inter / union > iou_threshold
    CUDA kernel:  inter > iou_threshold * union

and return the kept indices in that sorted order. The two tests disagree where the IoU lies within a
float32 rounding of the threshold (integer boxes at an IoU of exactly 0.7, say), and the CPU and the
CUDA sort order equal scores differently, so mmcv's CPU and CUDA results differ in those cases; we
follow the kernel of the device the boxes are on.

torchvision's ``nms`` runs the CPU kernel's test, but compares in float64 (mmcv's C++ signature takes
a ``float``) and orders equal scores by its own sort; we round the threshold to float32 and hand it
the boxes already in mmcv's order with strictly decreasing stand-in scores, so its sort is the
identity. That is the CPU kernel exactly (``offset=0``).

On CUDA, ``MMKD_NMS_CUDA`` chooses:
- ``fast`` (default): torchvision's kernel on the device's sort order, i.e. mmcv's CUDA kernel except
  that IoUs are tested in the CPU kernel's form. The two forms differ only for an IoU within one
  float32 rounding of the threshold: 0 of 4.8e8 pairs of random float boxes at thresholds 0.3/0.5/0.7
  (docs/benchmarks.md), but integer boxes at exact ratios do reach it.
- ``exact``: mmcv's CUDA kernel bit for bit. torchvision's result is kept where one pass over all
  pairs finds the two tests agreeing, else :func:`greedy_nms` recomputes it; 2-3x the time of
  ``fast`` at RPN sizes on an H100.
``offset=1`` (legacy configs, no torchvision counterpart) always runs :func:`greedy_nms`, which computes
the overlap bits on the device in row blocks and runs mmcv's greedy pass over them on the host.
"""
import os

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import nms as torchvision_nms

# Rows of the N x N overlap test computed at once: bounds the temporaries to ~16 MB each.
_BLOCK_ELEMENTS = 1 << 22
_BIT_WEIGHTS = (128, 64, 32, 16, 8, 4, 2, 1)   # np.packbits' (big-endian) order within a byte
CUDA_MODE_ENV = 'MMKD_NMS_CUDA'
CUDA_MODES = ('fast', 'exact')


def cuda_mode() -> str:
    mode = os.environ.get(CUDA_MODE_ENV, 'fast')
    if mode not in CUDA_MODES:
        raise ValueError(f'{CUDA_MODE_ENV}={mode!r}: choose one of {CUDA_MODES} (mmkd/ops/nms.py).')
    return mode


def _float32(value: float) -> float:
    return float(np.float32(value))


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int) -> Tensor:
    """Indices of the kept boxes, highest score first (mmcv ``ext_module.nms``)."""
    if offset not in (0, 1):
        raise ValueError(f'nms: offset must be 0 or 1 (mmcv), got {offset}.')
    if boxes.numel() == 0:
        return boxes.new_empty((0, ), dtype=torch.long)
    # The very call mmcv makes, on the same device, so equal scores are ordered as mmcv orders them.
    order = scores.sort(0, descending=True)[1]
    # mmcv's kernels read float32 (half boxes under AMP are widened, as torchvision's autocast does).
    sorted_boxes = boxes.index_select(0, order).float()
    threshold = _float32(iou_threshold)
    kernel = 'cuda' if boxes.is_cuda else 'cpu'
    if offset == 0 and (kernel == 'cpu' or cuda_mode() == 'fast' or _tests_agree(sorted_boxes, threshold)):
        ranks = torch.arange(order.numel(), 0, -1, dtype=torch.float32, device=boxes.device)
        keep = torchvision_nms(sorted_boxes, ranks, threshold)
    else:
        keep = greedy_nms(sorted_boxes, threshold, offset, kernel)
    return order.index_select(0, keep)


def _overlap_blocks(boxes: Tensor, offset: int):
    """(inter, union) of blocks of rows of the N x N pairs, ~_BLOCK_ELEMENTS at a time."""
    n = boxes.shape[0]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    rows = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n, rows):
        block = slice(start, start + rows)
        width = (torch.minimum(x2[block, None], x2) - torch.maximum(x1[block, None], x1) + offset)
        height = (torch.minimum(y2[block, None], y2) - torch.maximum(y1[block, None], y1) + offset)
        inter = width.clamp(min=0) * height.clamp(min=0)
        yield inter, areas[block, None] + areas - inter


def _tests_agree(boxes: Tensor, threshold: float) -> bool:
    """Whether the CPU test (inter / union > t) and the CUDA test (inter > t * union) agree on
    every pair (offset 0): then both kernels' greedy passes keep the same boxes."""
    disagree = boxes.new_zeros((), dtype=torch.bool)
    for inter, union in _overlap_blocks(boxes, 0):
        disagree |= ((inter / union > threshold) != (inter > threshold * union)).any()
    return not bool(disagree)


def greedy_nms(boxes: Tensor, threshold: float, offset: int, kernel: str) -> Tensor:
    """Kept rows of ``boxes`` (float32, already in score order) under mmcv's ``kernel`` test
    ('cpu': inter / union > threshold, 'cuda': inter > threshold * union)."""
    if kernel not in ('cpu', 'cuda'):
        raise ValueError(f"greedy_nms: kernel must be 'cpu' or 'cuda', got {kernel!r}.")
    n = boxes.shape[0]
    padded = -(-n // 8) * 8
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=boxes.device)
    bits = []
    for inter, union in _overlap_blocks(boxes, offset):
        over = inter / union > threshold if kernel == 'cpu' else inter > threshold * union
        over = torch.nn.functional.pad(over, (0, padded - n)).view(over.shape[0], -1, 8)
        bits.append((over * weights).sum(-1, dtype=torch.uint8))
    # One transfer of N x N/8 bytes, then mmcv's host-side pass: keep i unless a kept box removed it.
    bits = torch.cat(bits).cpu().numpy()
    removed = np.zeros(padded // 8, dtype=np.uint8)
    keep = []
    for i in range(n):
        if not removed[i >> 3] & (128 >> (i & 7)):
            keep.append(i)
            removed |= bits[i]
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)
