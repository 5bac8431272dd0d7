"""MGD: Yang et al., "Masked Generative Distillation" (ECCV 2022)."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import check_same_shape, full_precision, upcast, upcast_target


@MODELS.register_module()
class MGDLoss(nn.Module):
    r"""The student's feature, aligned to the teacher's channels, randomly masked and passed through
    a small generation block, must regenerate the teacher's whole map:

    .. math::
        L_{MGD} = \alpha \cdot \frac{1}{N} \sum_{n, c, i, j}
                  \big(T_{n,c,i,j} - \mathcal{G}(f_{align}(S_n) \cdot M_n)_{c,i,j}\big)^2,
        \qquad M_{n,i,j} = 0 \text{ with probability } \lambda, \text{ else } 1

    with :math:`\alpha` = ``loss_weight``. The mask, :math:`f_{align}` (a 1 x 1 conv where the
    channel counts differ) and :math:`\mathcal{G}` (3 x 3 conv, ReLU, 3 x 3 conv) are the term's
    connector, ``mmkd.MGDConnector``, trained with the student (``mmkd.Distiller``); this loss is
    the squared error to the teacher, summed and divided by N as the authors' code does
    (``MSELoss(reduction='sum') / N``; paper eq. 5 leaves the normalisation out).

    Paper: Z. Yang, Z. Li, M. Shao, D. Shi, Z. Yuan, C. Yuan, "Masked Generative Distillation",
    ECCV 2022, arXiv:2205.01529.

    Example (the authors' detection setting: alpha 2e-5, lambda 0.65)::

        dict(loss=dict(type='mmkd.MGDLoss', loss_weight=2e-5),
             student=dict(module='neck', index=0), teacher=dict(module='neck', index=0),
             connector=dict(type='mmkd.MGDConnector', in_channels=256, out_channels=256, mask_ratio=0.65))
    """

    def __init__(self, loss_weight: float = 2e-5) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_same_shape('MGDLoss', student_feat, teacher_feat,
                         hint=" MGD's student input is its connector's output: add connector="
                              "dict(type='mmkd.MGDConnector', in_channels=C_student, out_channels=C_teacher).")
        student, teacher = upcast(student_feat), upcast_target(teacher_feat)
        return self.loss_weight * F.mse_loss(student, teacher, reduction='sum') / student.shape[0]
