"""``sigmoid_focal_loss_forward`` / ``_backward``: mmcv's CUDA kernels in torch.

mmcv has the fused sigmoid focal loss only on CUDA (mmcv/ops/csrc/common/cuda/
sigmoid_focal_loss_cuda_kernel.cuh), and mmdet's ``FocalLoss`` calls it for CUDA inputs
(RetinaNet, FCOS, ATSS...). Per element, with p = 1 / (1 + exp(-x)), target class t (t = C means
background) and class weight w_t (1 without weights):

    loss = -alpha     (1 - p)^gamma log(max(p, FLT_MIN))        if t == c
           -(1-alpha) p^gamma       log(max(1 - p, FLT_MIN))    otherwise
    dloss/dx = -alpha     (1 - p)^gamma (1 - p - gamma p log(max(p, FLT_MIN)))       if t == c
               -(1-alpha) p^gamma       (gamma (1 - p) log(max(1 - p, FLT_MIN)) - p) otherwise

each times w_t; both fill the caller's tensor in place, as the kernels do.
"""
import torch
from torch import Tensor

FLT_MIN = torch.finfo(torch.float32).tiny


def _terms(input: Tensor, target: Tensor, weight: Tensor):
    x = input.float() if input.dtype != torch.float64 else input
    p = 1.0 / (1.0 + torch.exp(-x))
    classes = torch.arange(x.shape[1], device=x.device)
    positive = target[:, None] == classes[None, :]
    class_weight = weight.to(x.dtype)[target][:, None] if weight.numel() else None
    return p, positive, class_weight


def sigmoid_focal_loss_forward(input: Tensor, target: Tensor, weight: Tensor, output: Tensor,
                               gamma: float, alpha: float) -> None:
    p, positive, class_weight = _terms(input, target, weight)
    loss_p = -alpha * (1 - p).pow(gamma) * torch.log(p.clamp(min=FLT_MIN))
    loss_n = -(1 - alpha) * p.pow(gamma) * torch.log((1 - p).clamp(min=FLT_MIN))
    loss = torch.where(positive, loss_p, loss_n)
    output.copy_(loss if class_weight is None else loss * class_weight)


def sigmoid_focal_loss_backward(input: Tensor, target: Tensor, weight: Tensor, grad_input: Tensor,
                                gamma: float, alpha: float) -> None:
    p, positive, class_weight = _terms(input, target, weight)
    grad_p = -alpha * (1 - p).pow(gamma) * (1 - p - gamma * p * torch.log(p.clamp(min=FLT_MIN)))
    grad_n = -(1 - alpha) * p.pow(gamma) * (
        gamma * (1 - p) * torch.log((1 - p).clamp(min=FLT_MIN)) - p)
    grad = torch.where(positive, grad_p, grad_n)
    grad_input.copy_(grad if class_weight is None else grad * class_weight)
