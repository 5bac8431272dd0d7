"""FSP: Yim et al., "A Gift from Knowledge Distillation: Fast Optimization, Network Minimization
and Transfer Learning" (CVPR 2017)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import choose_form, full_precision, upcast, upcast_target


def fsp_matrix(first: Tensor, second: Tensor) -> Tensor:
    """G = F1 F2^T / (H W), shape (N, C1, C2); the larger map is average-pooled to the smaller's size."""
    size = (min(first.shape[2], second.shape[2]), min(first.shape[3], second.shape[3]))
    first = F.adaptive_avg_pool2d(first, size) if tuple(first.shape[2:]) != size else first
    second = F.adaptive_avg_pool2d(second, size) if tuple(second.shape[2:]) != size else second
    hw = size[0] * size[1]
    return torch.bmm(first.flatten(2), second.flatten(2).transpose(1, 2)) / hw


def check_pair(network: str, first: Tensor, second: Tensor) -> None:
    if first.dim() != 4 or second.dim() != 4 or first.shape[0] != second.shape[0]:
        raise ValueError(
            f'FSPLoss expects the {network} pair to be (N, C, H, W) maps with the same N; got '
            f'{tuple(first.shape)} and {tuple(second.shape)}.')


@MODELS.register_module()
class FSPLoss(nn.Module):
    r"""Flow of solution procedure between two layers of each network.

    Per sample, :math:`G_{ij} = \frac{1}{HW}\sum_{h,w} F^1_{i,hw} F^2_{j,hw}` (a C1 x C2 matrix),
    after pooling the larger map of the pair to the smaller's H x W. Then

    - ``form='paper'`` (eq. 2, with the lambda_i in ``loss_weight``): :math:`\frac{1}{N}\sum_n \|G^s_n - G^t_n\|_F^2`;
    - ``form='code'`` (RepDistiller's FSP): mean over all elements of :math:`(G^s - G^t)^2`.

    Student and teacher G must both be C1 x C2; their spatial sizes need not match.

    Paper: J. Yim, D. Joo, J. Bae, J. Kim, "A Gift from Knowledge Distillation: Fast Optimization,
    Network Minimization and Transfer Learning", CVPR 2017.

    Example (a pair of taps on each side, bound to forward's parameters in order)::

        dict(loss=dict(type='mmkd.FSPLoss', form='paper'),
             student=(dict(module='backbone.layer2', io='input'), 'backbone.layer2'),
             teacher=(dict(module='backbone.layer2', io='input'), 'backbone.layer2'))
    """

    def __init__(self, form: str = 'paper', loss_weight: float = 1.0, reduction: Optional[str] = None) -> None:
        super().__init__()
        self.form = choose_form('FSPLoss', form, 'reduction', reduction, dict(mean='code', paper='paper'))
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_first: Tensor, student_second: Tensor, teacher_first: Tensor,
                teacher_second: Tensor) -> Tensor:
        check_pair('student', student_first, student_second)
        check_pair('teacher', teacher_first, teacher_second)
        student_g = fsp_matrix(upcast(student_first), upcast(student_second))
        teacher_g = fsp_matrix(upcast_target(teacher_first), upcast_target(teacher_second))
        if student_g.shape != teacher_g.shape:
            raise ValueError(
                'FSPLoss needs the same C1 x C2 FSP matrix for student and teacher; got student '
                f'maps {tuple(student_first.shape)}, {tuple(student_second.shape)} (G '
                f'{tuple(student_g.shape)}) and teacher maps {tuple(teacher_first.shape)}, '
                f'{tuple(teacher_second.shape)} (G {tuple(teacher_g.shape)}). Choose layer pairs '
                'with matching channel widths.')
        sq_diff = (student_g - teacher_g).pow(2)
        if self.form == 'paper':
            loss = sq_diff.sum() / sq_diff.shape[0]
        else:
            loss = sq_diff.mean()
        return self.loss_weight * loss
