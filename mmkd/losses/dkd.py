"""DKD: Zhao et al., "Decoupled Knowledge Distillation" (CVPR 2022)."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import full_precision, upcast, upcast_target


def binary_and_rest(z: Tensor, target: Tensor):
    """log b = (log p_gt, log(1 - p_gt)) of softmax(z), shape (N, 2), and the logits of the
    non-target classes, shape (N, K - 1), both from the logits (no 1 - p cancellation)."""
    n, k = z.shape
    is_target = F.one_hot(target, k).bool()
    rest = z[~is_target].view(n, k - 1)
    log_total = torch.logsumexp(z, dim=1)
    log_b = torch.stack([z[is_target] - log_total, torch.logsumexp(rest, dim=1) - log_total], dim=1)
    return log_b, rest


@MODELS.register_module()
class DKDLoss(nn.Module):
    r"""KD split into its target-class and non-target-class parts, weighted separately. With
    :math:`p = \mathrm{softmax}(z / T)`, :math:`b = (p_{gt}, 1 - p_{gt})` and :math:`\hat p` the
    softmax over the K - 1 non-target classes:

    .. math::
        L_{DKD} = T^2 \cdot \frac{1}{N} \sum_n \big[\alpha \, KL(b^T_n \| b^S_n)
                  + \beta \, KL(\hat p^T_n \| \hat p^S_n)\big]

    (TCKD and NCKD, paper eq. 4 with the :math:`T^2` of KD). The authors' code (mdistiller)
    drops the target class from NCKD by subtracting 1000 from its logit; here it is removed
    exactly, which agrees to float rounding. mdistiller ramps the loss in linearly over the first
    epochs (20 on CIFAR): ``schedule=dict(warmup=20, by_epoch=True)``. ``forward`` takes the
    ground-truth labels of the batch (``gt_labels``), which the engine reads from the data samples.

    Paper: B. Zhao, Q. Cui, R. Song, Y. Qiu, J. Liang, "Decoupled Knowledge Distillation",
    CVPR 2022, arXiv:2203.08679.

    Example (mdistiller's CIFAR-100 setting)::

        dict(loss=dict(type='mmkd.DKDLoss', alpha=1.0, beta=8.0, temperature=4.0),
             student='head', teacher='head', schedule=dict(warmup=20, by_epoch=True))
    """

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'DKDLoss temperature must be > 0, got {temperature}.')
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Tensor) -> Tensor:
        if (student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape
                or student_logits.shape[1] < 2 or gt_labels.shape != student_logits.shape[:1]):
            raise ValueError(
                'DKDLoss expects student and teacher logits of the same shape (N, K), K >= 2, and N '
                f'labels; got student {tuple(student_logits.shape)}, teacher '
                f'{tuple(teacher_logits.shape)}, labels {tuple(gt_labels.shape)}.')
        if gt_labels.min() < 0 or gt_labels.max() >= student_logits.shape[1]:
            raise ValueError(f'DKDLoss labels must be in [0, {student_logits.shape[1]}), got '
                             f'{gt_labels.min().item()}..{gt_labels.max().item()}.')
        t = self.temperature
        labels = gt_labels.long()
        log_b_s, rest_s = binary_and_rest(upcast(student_logits) / t, labels)
        log_b_t, rest_t = binary_and_rest(upcast_target(teacher_logits) / t, labels)
        tckd = F.kl_div(log_b_s, log_b_t, reduction='batchmean', log_target=True)
        nckd = F.kl_div(F.log_softmax(rest_s, dim=1), F.log_softmax(rest_t, dim=1),
                        reduction='batchmean', log_target=True)
        return self.loss_weight * t * t * (self.alpha * tckd + self.beta * nckd)
