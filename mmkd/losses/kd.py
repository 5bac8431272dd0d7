"""KD: Hinton et al., "Distilling the Knowledge in a Neural Network" (2015)."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import full_precision, upcast, upcast_target


@MODELS.register_module()
class KDLoss(nn.Module):
    r"""Soft-target loss on logits of shape (N, K):

    .. math::
        L_{KD} = T^2 \cdot \frac{1}{N} \sum_n KL\big(\mathrm{softmax}(z^t_n / T) \,\|\,
                 \mathrm{softmax}(z^s_n / T)\big)

    The :math:`T^2` factor keeps the gradient scale independent of the temperature.

    Args:
        temperature: the softening temperature T.
        loss_weight: multiplies the loss.

    Paper: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
    NIPS 2014 Deep Learning Workshop, arXiv:1503.02531.

    Example (a term of ``mmkd.Distiller`` or ``mmkd.DistillationHook``)::

        dict(loss=dict(type='mmkd.KDLoss', temperature=4.0, loss_weight=1.0),
             student='head', teacher='head')
    """

    def __init__(self, temperature: float = 4.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'KDLoss temperature must be > 0, got {temperature}.')
        self.temperature = temperature
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
            raise ValueError(
                'KDLoss expects student and teacher logits of the same shape (N, K); got student '
                f'{tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)}.')
        t = self.temperature
        log_p_s = F.log_softmax(upcast(student_logits) / t, dim=1)
        log_p_t = F.log_softmax(upcast_target(teacher_logits) / t, dim=1)
        kl = F.kl_div(log_p_s, log_p_t, reduction='batchmean', log_target=True)
        return self.loss_weight * t * t * kl
