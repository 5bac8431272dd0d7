"""RKD: Park et al., "Relational Knowledge Distillation" (CVPR 2019)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import full_precision, upcast, upcast_target


#: Squared distances at or below this are one point (the diagonal, or a duplicated sample): distance
#: 0, left out of the mean, and every angle at it 0 (the authors' code: F.normalize's 0 for the
#: angles; for the distance, 1e-6 from its clamp, counted in the mean).
EPS = 1e-12


def centred_gram(e: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """(Gram matrix, squared pairwise distances, which pairs are two points) of the embeddings after
    removing their mean, which moves no distance or angle but keeps the Gram entries small (less
    cancellation in float32). The diagonal is never a pair, whatever its rounding."""
    e = e - e.mean(dim=0, keepdim=True)
    gram = e @ e.t()
    sq = gram.diagonal()
    sq_dist = (sq[:, None] + sq[None, :] - 2 * gram).clamp(min=EPS)
    distinct = (sq_dist > EPS) & ~torch.eye(len(e), dtype=torch.bool, device=e.device)
    return gram, sq_dist, distinct


def normalised_distances(sq_dist: Tensor, distinct: Tensor) -> Tensor:
    """psi_D: the N x N Euclidean distances (0 for one point) over their mean over the pairs."""
    d = torch.where(distinct, sq_dist, torch.ones_like(sq_dist)).sqrt() * distinct
    return d / d[distinct].mean()


def angles(gram: Tensor, sq_dist: Tensor, distinct: Tensor) -> Tensor:
    """psi_A: the N x N x N cosines at j, <e_i - e_j, e_k - e_j> / (|e_i - e_j| |e_k - e_j|), from the
    Gram matrix alone (no N x N x D tensor of differences): <e_i - e_j, e_k - e_j> = G_ik - G_ij -
    G_jk + G_jj. 0 where i or k coincides with j (``distinct[j, i]`` false)."""
    norm = torch.where(distinct, sq_dist, torch.ones_like(sq_dist)).sqrt()
    dot = gram[None, :, :] - gram[:, :, None] - gram[:, None, :] + gram.diagonal()[:, None, None]
    valid = distinct[:, :, None] & distinct[:, None, :]
    return torch.where(valid, dot, torch.zeros_like(dot)) / (norm[:, :, None] * norm[:, None, :])


@MODELS.register_module()
class RKDLoss(nn.Module):
    r"""Relational KD: the student's embeddings :math:`s_i` (feature maps are flattened; student and
    teacher dimensions may differ) keep the teacher's pairwise distances and triplet angles, with
    :math:`l_\delta` the Huber loss (smooth L1, :math:`\delta = 1`):

    .. math::
        L_{RKD} = \lambda_D \cdot \mathrm{mean}_{i,j}\, l_\delta\big(\psi_D(t_i, t_j), \psi_D(s_i, s_j)\big)
                + \lambda_A \cdot \mathrm{mean}_{i,j,k}\, l_\delta\big(\psi_A(t_i, t_j, t_k), \psi_A(s_i, s_j, s_k)\big)

    :math:`\psi_D(t_i, t_j) = \|t_i - t_j\|_2 / \mu`, with :math:`\mu` the mean distance over the
    pairs; :math:`\psi_A = \cos \angle t_i t_j t_k`. As the authors' code (and RepDistiller,
    mmrazor) the Huber terms are averaged over all N^2 pairs and N^3 triplets, degenerate ones
    included (both sides 0 there); the paper writes sums, a constant factor that
    ``distance_weight``/``angle_weight`` absorb at a fixed batch size. Distances and angles both
    come from the batch's N x N Gram matrix (the authors build the N x N x D differences for the
    angles: 1.2 GB at N = 32 on a 1024 x 7 x 7 map); the values agree to rounding. ``l2_norm=True``
    L2-normalises the embeddings first (mmrazor's ``with_l2_norm``). ``loss_weight`` scales both.

    Paper: W. Park, D. Kim, Y. Lu, M. Cho, "Relational Knowledge Distillation", CVPR 2019,
    arXiv:1904.05068.

    Example (the paper's and RepDistiller's weights, on the pooled features)::

        dict(loss=dict(type='mmkd.RKDLoss', distance_weight=25.0, angle_weight=50.0),
             student=dict(module='head', io='input'), teacher=dict(module='head', io='input'))
    """

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0,
                 l2_norm: bool = False, loss_weight: float = 1.0) -> None:
        super().__init__()
        if distance_weight < 0 or angle_weight < 0:
            raise ValueError(f'RKDLoss weights must be >= 0, got distance_weight={distance_weight}, '
                             f'angle_weight={angle_weight}.')
        self.distance_weight, self.angle_weight, self.l2_norm = distance_weight, angle_weight, l2_norm
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        if student_feat.dim() < 2 or teacher_feat.dim() < 2 or student_feat.shape[0] != teacher_feat.shape[0] \
                or student_feat.shape[0] < 2:
            raise ValueError(
                'RKDLoss expects student and teacher batches (N, ...) with the same N >= 2 (it relates '
                f'the samples of a batch); got student {tuple(student_feat.shape)} and teacher '
                f'{tuple(teacher_feat.shape)}.')
        s, t = upcast(student_feat).flatten(1), upcast_target(teacher_feat).flatten(1)
        if self.l2_norm:
            s, t = F.normalize(s, dim=1), F.normalize(t, dim=1)
        gram_s, sq_s, pairs_s = centred_gram(s)
        gram_t, sq_t, pairs_t = centred_gram(t)
        loss = s.new_zeros(())
        if self.distance_weight:
            loss = loss + self.distance_weight * F.smooth_l1_loss(normalised_distances(sq_s, pairs_s),
                                                                  normalised_distances(sq_t, pairs_t))
        if self.angle_weight:
            loss = loss + self.angle_weight * F.smooth_l1_loss(angles(gram_s, sq_s, pairs_s),
                                                               angles(gram_t, sq_t, pairs_t))
        return self.loss_weight * loss
