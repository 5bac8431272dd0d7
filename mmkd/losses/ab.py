"""AB: Heo et al., "Knowledge Transfer via Distillation of Activation Boundaries Formed by Hidden
Neurons" (AAAI 2019)."""
import torch
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import check_same_shape, full_precision, upcast, upcast_target


@MODELS.register_module()
class ABLoss(nn.Module):
    r"""Alternative (hinge-squared) activation-boundary loss on pre-ReLU responses:

    .. math::
        L = \frac{1}{N} \sum \big[(s + m)^2 \, 1[s > -m] \, 1[t \le 0]
                              + (s - m)^2 \, 1[s \le m] \, 1[t > 0]\big]

    summed over all elements. The student input must already have the teacher's shape
    (use a connector, as the paper does).

    Paper: B. Heo, M. Lee, S. Yun, J. Y. Choi, "Knowledge Transfer via Distillation of Activation
    Boundaries Formed by Hidden Neurons", AAAI 2019, arXiv:1811.03233.

    Example (``mmkd.Distiller``, with a connector to the teacher's channels)::

        dict(loss=dict(type='mmkd.ABLoss', margin=1.0, loss_weight=1.0),
             student='backbone.in5b.preact', teacher=dict(module='backbone.layer4.2.relu', io='input', call=2),
             connector=dict(type='mmkd.ConvConnector', in_channels=1024, out_channels=2048))
    """

    def __init__(self, margin: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f'ABLoss margin must be >= 0, got {margin}.')
        self.margin = margin
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_preact: Tensor, teacher_preact: Tensor) -> Tensor:
        check_same_shape('ABLoss', student_preact, teacher_preact,
                         hint=' Add a connector to the term to map the student to the teacher.')
        s = upcast(student_preact)
        teacher_active = upcast_target(teacher_preact) > 0
        # (s + m)^2 [s > -m] = relu(s + m)^2 and (s - m)^2 [s <= m] = relu(m - s)^2: one pass.
        violation = torch.where(teacher_active, self.margin - s, s + self.margin).relu()
        loss = violation.pow(2).sum() / s.shape[0]
        return self.loss_weight * loss
