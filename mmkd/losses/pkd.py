"""PKD: Cao et al., "PKD: General Distillation Framework for Object Detectors via Pearson
Correlation Coefficient" (NeurIPS 2022)."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import check_same_channels, full_precision, resize_to, upcast, upcast_target


def standardise(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """Each channel to zero mean and unit (unbiased) standard deviation over the batch and all
    positions: (x - mean_c) / (std_c + eps), as the authors' code does."""
    std, mean = torch.std_mean(feat, dim=(0, 2, 3), keepdim=True)   # one pass, no transposed copy
    return (feat - mean) / (std + eps)


@MODELS.register_module()
class PKDLoss(nn.Module):
    r"""Feature imitation after per-channel standardisation, :math:`\hat F = (F - \mu_c) / \sigma_c`
    (mean and unbiased standard deviation of channel c over N x H x W):

    .. math::
        L_{PKD} = \frac{1}{2 |F|} \sum (\hat F^S - \hat F^T)^2

    which, with both maps standardised, equals :math:`1 - r` on average, r the Pearson correlation
    of the two channels (paper eq. 6): magnitudes and the detector family no longer matter, so no
    connector is needed when the channel counts match. If the spatial sizes differ, the student
    is resized (bilinear) to the teacher's, as mmrazor's ``PKDLoss(resize_stu=True)`` (the authors'
    release), which this equals, ``eps=1e-6`` included; ``resize_student=False`` resizes the
    teacher instead.

    Paper: W. Cao, Y. Zhang, J. Gao, A. Cheng, K. Cheng, J. Cheng, "PKD: General Distillation
    Framework for Object Detectors via Pearson Correlation Coefficient", NeurIPS 2022,
    arXiv:2207.02039.

    Example (an FPN level; mmrazor's Faster R-CNN configs use loss_weight=6)::

        dict(loss=dict(type='mmkd.PKDLoss', loss_weight=6.0),
             student=dict(module='neck', index=0), teacher=dict(module='neck', index=0))
    """

    def __init__(self, loss_weight: float = 1.0, resize_student: bool = True) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.resize_student = resize_student

    @full_precision
    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_same_channels('PKDLoss', student_feat, teacher_feat)
        student, teacher = upcast(student_feat), upcast_target(teacher_feat)
        if self.resize_student:
            student = resize_to(student, teacher.shape[-2:])
        else:
            teacher = resize_to(teacher, student.shape[-2:])
        return self.loss_weight * F.mse_loss(standardise(student), standardise(teacher)) / 2
