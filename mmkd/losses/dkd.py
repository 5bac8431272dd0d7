"""DKD: Zhao et al., "Decoupled Knowledge Distillation" (CVPR 2022)."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import full_precision, upcast, upcast_target


def decoupled(z: Tensor, is_target: Tensor):
    """log b = (log p_gt, log(1 - p_gt)) of softmax(z), shape (N, 2), and the log-sum-exp of the
    non-target logits, shape (N,): from the logits, with no 1 - p cancellation and no copy of the
    K - 1 non-target columns."""
    log_total = torch.logsumexp(z, dim=1)
    log_rest = torch.logsumexp(z.masked_fill(is_target, float('-inf')), dim=1)
    target = z[is_target]
    return torch.stack([target - log_total, log_rest - log_total], dim=1), log_rest


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

    Example (mdistiller's CIFAR-100 setting, the defaults)::

        dict(loss=dict(type='mmkd.DKDLoss', alpha=1.0, beta=8.0, temperature=4.0),
             student='head', teacher='head', schedule=dict(warmup=20, by_epoch=True))

    .. warning:: The defaults are the CIFAR-100 settings. On ImageNet the paper and mdistiller use
       ``beta=0.5, temperature=1.0``.
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
        num_classes = student_logits.shape[1]
        if gt_labels.device.type == 'cpu':
            if gt_labels.min() < 0 or gt_labels.max() >= num_classes:
                raise ValueError(f'DKDLoss labels must be in [0, {num_classes}), got '
                                 f'{gt_labels.min().item()}..{gt_labels.max().item()}.')
        else:   # checked on the device: reading the labels on the host would wait for it every step
            torch._assert_async(((gt_labels >= 0) & (gt_labels < num_classes)).all(),
                                f'DKDLoss labels must be in [0, {num_classes}).')
        t = self.temperature
        is_target = F.one_hot(gt_labels.long(), student_logits.shape[1]).bool()
        z_s, z_t = upcast(student_logits) / t, upcast_target(teacher_logits) / t
        log_b_s, log_rest_s = decoupled(z_s, is_target)
        log_b_t, log_rest_t = decoupled(z_t, is_target)
        tckd = F.kl_div(log_b_s, log_b_t, reduction='batchmean', log_target=True)
        # KL(p^T || p^S) over the non-target classes: sum_k p^T_k (z^T_k - z^S_k) + lse(z^S) - lse(z^T),
        # p^T the softmax with the target masked out (weight 0 there, so its logits never enter).
        rest_t = torch.softmax(z_t.masked_fill(is_target, float('-inf')), dim=1)
        nckd = ((rest_t * (z_t - z_s)).sum(dim=1) + log_rest_s - log_rest_t).mean()
        return self.loss_weight * t * t * (self.alpha * tckd + self.beta * nckd)
