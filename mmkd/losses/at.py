"""AT: Zagoruyko & Komodakis, "Paying More Attention to Attention" (ICLR 2017)."""
from typing import Optional

from torch import Tensor, nn
import torch.nn.functional as F

from mmkd.registry import MODELS
from .utils import check_feature_maps, choose_form, full_precision, resize_to, upcast, upcast_target


def attention_map(feat: Tensor, p: float) -> Tensor:
    """q = vec(mean_c |A_c|^p) / ||vec(mean_c |A_c|^p)||_2, shape (N, H*W)."""
    powered = feat.pow(p) if p % 2 == 0 else feat.abs().pow(p)  # even p: |x|^p = x^p, skip a pass
    return F.normalize(powered.mean(dim=1).flatten(1), dim=1)


@MODELS.register_module()
class ATLoss(nn.Module):
    r"""Activation-based attention transfer.

    With :math:`Q = \mathrm{vec}(\frac{1}{C}\sum_c |A_c|^p)` and :math:`q = Q / \|Q\|_2` per sample
    (the student map is first resized to the teacher's H x W):

    - ``form='code'`` (the authors' code): :math:`\frac{1}{N \cdot HW}\sum_n \sum_j (q^s_{nj} - q^t_{nj})^2`;
    - ``form='paper'`` (eq. 2): :math:`\frac{1}{N}\sum_n \|q^s_n - q^t_n\|_2`.

    Channel counts of student and teacher may differ. The paper's beta goes into ``loss_weight``.

    Paper: S. Zagoruyko, N. Komodakis, "Paying More Attention to Attention: Improving the
    Performance of Convolutional Neural Networks via Attention Transfer", ICLR 2017, arXiv:1612.03928.

    Example::

        dict(loss=dict(type='mmkd.ATLoss', p=2, form='code', loss_weight=1000.0),
             student='backbone.layer3', teacher='backbone.layer3')
    """

    def __init__(self, p: float = 2.0, form: str = 'code', loss_weight: float = 1.0,
                 mode: Optional[str] = None) -> None:
        super().__init__()
        self.form = choose_form('ATLoss', form, 'mode', mode, dict(code='code', paper='paper'))
        if p <= 0:
            raise ValueError(f'ATLoss p must be > 0, got {p}.')
        self.p = p
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_feature_maps('ATLoss', student_feat, teacher_feat)
        student = resize_to(upcast(student_feat), teacher_feat.shape[-2:])
        diff = attention_map(student, self.p) - attention_map(upcast_target(teacher_feat), self.p)
        if self.form == 'code':
            loss = diff.pow(2).mean()
        else:
            loss = diff.norm(dim=1).mean()
        return self.loss_weight * loss
