"""FitNet hints: Romero et al., "FitNets: Hints for Thin Deep Nets" (ICLR 2015)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import check_same_shape, choose_form, full_precision, upcast, upcast_target


@MODELS.register_module()
class FitNetLoss(nn.Module):
    r"""Hint loss between the connector-mapped student feature r(u) and the teacher hint v:

    - ``form='code'`` (RepDistiller's and torchdistill's MSE): :math:`\frac{1}{|v|} \sum (r(u) - v)^2`
      over all elements;
    - ``form='paper'`` (eq. 3): :math:`\frac{1}{N} \sum_n \tfrac12 \|r(u_n) - v_n\|_2^2`.

    The student input must already have the teacher's shape: map it with a connector
    (e.g. a 1x1 conv + BN) in the distillation term.

    Paper: A. Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015, arXiv:1412.6550.

    Example (``mmkd.Distiller``: the connector trains with the student)::

        dict(loss=dict(type='mmkd.FitNetLoss', form='code'),
             student='backbone.in5b.preact', teacher=dict(module='backbone.layer4.2.relu', io='input', call=2),
             connector=dict(type='mmkd.ConvConnector', in_channels=1024, out_channels=2048))
    """

    def __init__(self, form: str = 'code', loss_weight: float = 1.0, reduction: Optional[str] = None) -> None:
        super().__init__()
        self.form = choose_form('FitNetLoss', form, 'reduction', reduction, dict(mean='code', paper='paper'))
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_same_shape(
            'FitNetLoss', student_feat, teacher_feat,
            hint=' Add a connector to the term (e.g. connector=dict(type=\'mmkd.ConvConnector\', '
            'in_channels=C_student, out_channels=C_teacher)) to map the student to the teacher.')
        student, teacher = upcast(student_feat), upcast_target(teacher_feat)
        if self.form == 'code':
            loss = F.mse_loss(student, teacher)
        else:
            loss = 0.5 * F.mse_loss(student, teacher, reduction='sum') / student.shape[0]
        return self.loss_weight * loss
