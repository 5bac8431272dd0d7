"""NST: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer" (2017).

The squared MMD between the student's and the teacher's channel distributions is computed in
whichever exact form is cheapest for the kernel and the shape:

- linear kernel: MMD = ||mean(X) - mean(Y)||^2, O(N C HW);
- polynomial kernel with d = 2: sum_ij (x_i^T y_j + c)^2 expands into spatial Gram matrices, so
  MMD = ||X^T X / C_S - Y^T Y / C_T||_F^2 + 2c ||mean(X) - mean(Y)||^2, O(N HW^2 C) time and
  O(N HW^2) memory, chosen when cheaper than the channel form (small maps, wide layers: the
  paper's 7x7 tap with 1024 / 2048 channels);
- otherwise the channel form: the C_S x C_S, C_T x C_T and C_S x C_T Gram matrices, O(N C^2 HW);
  for the Gaussian kernel made and summed in blocks, never stored (gaussian_kernel_sum.py).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .gaussian_kernel_sum import GaussianKernelSum
from .utils import check_feature_maps, full_precision, resize_to, upcast, upcast_target

KERNELS = ('linear', 'poly', 'gaussian')


def channel_distribution(feat: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, HW), each channel's spatial response L2-normalised."""
    return F.normalize(feat.flatten(2), dim=2)


def mean_discrepancy(x: Tensor, y: Tensor) -> Tensor:
    """||mean_i x_i - mean_j y_j||^2 per sample: the linear-kernel MMD."""
    return (x.mean(dim=1) - y.mean(dim=1)).pow(2).sum(dim=1)


def spatial_gram_discrepancy(x: Tensor, y: Tensor) -> Tensor:
    """||X^T X / C_S - Y^T Y / C_T||_F^2 per sample = MMD of the kernel (x^T y)^2."""
    x_t, y_t = x.transpose(1, 2), y.transpose(1, 2)
    diff = torch.baddbmm(torch.bmm(x_t, x), y_t, y, beta=1.0 / x.shape[1], alpha=-1.0 / y.shape[1])
    return diff.pow(2).sum(dim=(1, 2))


def mmd_from_kernel_matrices(k_xx: Tensor, k_yy: Tensor, k_xy: Tensor) -> Tensor:
    """Biased squared MMD per sample from the three kernel matrices."""
    c_s, c_t = k_xy.shape[1], k_xy.shape[2]
    return (k_xx.sum(dim=(1, 2)) / (c_s * c_s) + k_yy.sum(dim=(1, 2)) / (c_t * c_t)
            - 2.0 * k_xy.sum(dim=(1, 2)) / (c_s * c_t))


def mean_pairwise_sq_dist(x: Tensor, y: Tensor, x_sq: Tensor, y_sq: Tensor) -> Tensor:
    """Mean of ||a - b||^2 over the n^2 - n ordered pairs of distinct members of X u Y, per sample.

    sum_{a != b} ||a - b||^2 = 2n sum ||a||^2 - 2 ||sum a||^2, so no pairwise matrix is needed.
    """
    n = x.shape[1] + y.shape[1]
    sum_sq = x_sq.sum(dim=1) + y_sq.sum(dim=1)
    total = x.sum(dim=1) + y.sum(dim=1)
    return (2.0 * n * sum_sq - 2.0 * total.pow(2).sum(dim=1)) / (n * n - n)


@MODELS.register_module()
class NSTLoss(nn.Module):
    r"""Neuron Selectivity Transfer: squared MMD between channel distributions.

    Each channel's H x W response is flattened and L2-normalised: the student gives
    :math:`X = \{x_i\}_{i=1}^{C_S}`, the teacher :math:`Y = \{y_j\}_{j=1}^{C_T}`
    (the student map is first resized to the teacher's H x W). Per sample,

    .. math::
        \mathcal{L}_{MMD^2}(X, Y) = \frac{1}{C_S^2}\sum_{i,i'} k(x_i, x_{i'})
            + \frac{1}{C_T^2}\sum_{j,j'} k(y_j, y_{j'})
            - \frac{2}{C_S C_T}\sum_{i,j} k(x_i, y_j)

    averaged over the batch, with the kernels

    - ``'linear'``: :math:`k(x, y) = x^\top y`;
    - ``'poly'``: :math:`k(x, y) = (x^\top y + c)^d` (``poly_offset`` c, ``poly_degree`` d);
    - ``'gaussian'``: :math:`k(x, y) = \exp(-\|x - y\|^2 / (2\sigma^2))`, where :math:`\sigma^2`
      is the sample's mean of :math:`\|a - b\|^2` over all ordered pairs of distinct members of
      :math:`X \cup Y` (detached), unless ``sigma2`` fixes it.

    Args:
        kernel: ``'linear'``, ``'poly'`` or ``'gaussian'``.
        poly_degree: d, a positive integer.
        poly_offset: c.
        sigma2: fixed :math:`\sigma^2` for the Gaussian kernel (default: the per-sample mean).
        loss_weight: multiplies the loss (the paper's lambda/2 goes here; 50 in its release).

    Paper: Z. Huang, N. Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity
    Transfer", arXiv:1707.01219, 2017.

    Example (the paper's ImageNet tap; works in ``mmkd.DistillationHook`` too)::

        dict(loss=dict(type='mmkd.NSTLoss', kernel='poly', poly_degree=2, poly_offset=0.0, loss_weight=50.0),
             student='backbone.in5b.preact', teacher=dict(module='backbone.layer4.2.relu', io='input', call=2))
    """

    def __init__(self, kernel: str = 'poly', poly_degree: int = 2, poly_offset: float = 0.0,
                 sigma2: Optional[float] = None, loss_weight: float = 1.0) -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f'NSTLoss kernel must be one of {KERNELS}, got {kernel!r}.')
        if int(poly_degree) != poly_degree or poly_degree < 1:
            raise ValueError(f'NSTLoss poly_degree must be a positive integer, got {poly_degree}.')
        if sigma2 is not None and sigma2 <= 0:
            raise ValueError(f'NSTLoss sigma2 must be > 0, got {sigma2}.')
        self.kernel = kernel
        self.poly_degree = int(poly_degree)
        self.poly_offset = poly_offset
        self.sigma2 = sigma2
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_feature_maps('NSTLoss', student_feat, teacher_feat)
        height, width = teacher_feat.shape[-2:]
        if height * width < 2:
            raise ValueError(
                f'NSTLoss needs at least 2 spatial positions to compare selectivity patterns; got '
                f'student {tuple(student_feat.shape)} and teacher {tuple(teacher_feat.shape)}. Tap an '
                'earlier layer (before global pooling).')
        x = channel_distribution(resize_to(upcast(student_feat), (height, width)))
        y = channel_distribution(upcast_target(teacher_feat))
        return self.loss_weight * self.mmd(x, y).mean()

    def mmd(self, x: Tensor, y: Tensor) -> Tensor:
        if self.kernel == 'linear' or (self.kernel == 'poly' and self.poly_degree == 1):
            return mean_discrepancy(x, y)  # (x^T y + c): the constant cancels
        if self.kernel == 'poly':
            if self.poly_degree == 2 and self.spatial_form_is_cheaper(x, y):
                return spatial_gram_discrepancy(x, y) + 2.0 * self.poly_offset * mean_discrepancy(x, y)
            return self.poly_mmd(x, y)
        return self.gaussian_mmd(x, y)

    @staticmethod
    def spatial_form_is_cheaper(x: Tensor, y: Tensor) -> bool:
        c_s, c_t, hw = x.shape[1], y.shape[1], x.shape[2]
        return hw * (c_s + c_t) < c_s * c_s + c_t * c_t + c_s * c_t

    def poly_mmd(self, x: Tensor, y: Tensor) -> Tensor:
        def k(a: Tensor, b: Tensor) -> Tensor:
            return (torch.bmm(a, b.transpose(1, 2)) + self.poly_offset).pow(self.poly_degree)

        return mmd_from_kernel_matrices(k(x, x), k(y, y), k(x, y))

    def gaussian_mmd(self, x: Tensor, y: Tensor) -> Tensor:
        if self.sigma2 is None:
            # Zero channels normalise to zero vectors, so ||x||^2 is not always 1.
            x_sq, y_sq = x.pow(2).sum(dim=2), y.pow(2).sum(dim=2)
            sigma2 = mean_pairwise_sq_dist(x, y, x_sq, y_sq).detach()
            # All members identical: every distance is 0 and so is the MMD; avoid 0/0.
            sigma2 = sigma2.clamp_min(torch.finfo(sigma2.dtype).tiny).view(-1, 1, 1)
        else:
            sigma2 = x.new_full((x.shape[0], 1, 1), self.sigma2)
        c_s, c_t = x.shape[1], y.shape[1]
        return (GaussianKernelSum.apply(x, x, sigma2, True) / (c_s * c_s)
                + GaussianKernelSum.apply(y, y, sigma2, True) / (c_t * c_t)
                - 2.0 * GaussianKernelSum.apply(x, y, sigma2, False) / (c_s * c_t))
