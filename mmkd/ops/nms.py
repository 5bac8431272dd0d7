"""``nms`` as mmcv's compiled CPU kernel computes it (mmcv/ops/csrc/pytorch/cpu/nms.cpp).

mmcv's kernel, for boxes sorted by ``scores.sort(0, descending=True)``, keeps a box unless a kept
box before it overlaps it by ``IoU > iou_threshold``, where (all in float32)

    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    inter = max(0, min(x2) - max(x1) + offset) * max(0, min(y2) - max(y1) + offset)
    IoU = inter / (area_i + area_j - inter)

and returns the kept indices in that sorted order. torchvision's ``nms`` runs the same greedy pass
with the same float32 arithmetic for ``offset=0``, but differs in two details that change keep lists:
it compares the IoU against the threshold in float64 (mmcv's C++ signature takes a ``float``), and it
orders equal scores by its own sort. We therefore round the threshold to float32 and hand torchvision
the boxes already in mmcv's order with strictly decreasing stand-in scores, so its sort is the
identity. ``offset=1`` (legacy configs) has no torchvision counterpart: it runs the greedy pass here
over the full IoU matrix, O(N^2) memory.
"""
import numpy as np
import torch
from torch import Tensor
from torchvision.ops import nms as torchvision_nms


def _float32(value: float) -> float:
    return float(np.float32(value))


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int) -> Tensor:
    """Indices of the kept boxes, highest score first (mmcv ``ext_module.nms``)."""
    if boxes.numel() == 0:
        return boxes.new_empty((0, ), dtype=torch.long)
    # The very call mmcv makes, on the same device, so equal scores are ordered as mmcv orders them.
    order = scores.sort(0, descending=True)[1]
    # mmcv's kernels read float32 (half boxes under AMP are widened, as torchvision's autocast does).
    sorted_boxes = boxes.index_select(0, order).float()
    threshold = _float32(iou_threshold)
    if offset == 0:
        ranks = torch.arange(order.numel(), 0, -1, dtype=torch.float32, device=boxes.device)
        keep = torchvision_nms(sorted_boxes, ranks, threshold)
    elif offset == 1:
        keep = _greedy_nms_with_offset(sorted_boxes, threshold, offset)
    else:
        raise ValueError(f'nms: offset must be 0 or 1 (mmcv), got {offset}.')
    return order.index_select(0, keep)


def _greedy_nms_with_offset(boxes: Tensor, threshold: float, offset: int) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    width = (torch.minimum(x2[:, None], x2[None]) - torch.maximum(x1[:, None], x1[None]) + offset)
    height = (torch.minimum(y2[:, None], y2[None]) - torch.maximum(y1[:, None], y1[None]) + offset)
    inter = width.clamp(min=0) * height.clamp(min=0)
    overlaps = (inter / (areas[:, None] + areas[None] - inter) > threshold).cpu().numpy()
    selected = np.ones(len(boxes), dtype=bool)
    for i in range(len(boxes)):
        if selected[i]:
            selected[i + 1:] &= ~overlaps[i, i + 1:]
    return torch.from_numpy(np.flatnonzero(selected)).to(boxes.device)
