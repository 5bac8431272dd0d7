"""DIST: Huang et al., "Knowledge Distillation from A Stronger Teacher" (NeurIPS 2022)."""
import torch
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import full_precision, upcast, upcast_target


def mean_pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over rows of the Pearson correlation of a's and b's rows (the authors' eps in the
    denominator)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return ((a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)).mean()


@MODELS.register_module()
class DISTLoss(nn.Module):
    r"""Match the relations, not the values, of the class probabilities
    :math:`Y = \mathrm{softmax}(Z / \tau)` (N x K), with :math:`\rho` the Pearson correlation:

    .. math::
        L_{DIST} = \tau^2 \Big[\beta \big(1 - \tfrac{1}{N}\sum_n \rho(Y^S_{n,:}, Y^T_{n,:})\big)
                   + \gamma \big(1 - \tfrac{1}{K}\sum_k \rho(Y^S_{:,k}, Y^T_{:,k})\big)\Big]

    the inter-class relation (each sample's ranking of the classes) and the intra-class relation
    (each class's ranking of the samples), paper eqs. 6-9. The authors' code adds
    :math:`\epsilon = 10^{-8}` to the denominator of :math:`\rho` and multiplies by
    :math:`\tau^2`, which the paper's equations omit; both are kept here.

    Paper: T. Huang, S. You, F. Wang, C. Qian, C. Xu, "Knowledge Distillation from A Stronger
    Teacher", NeurIPS 2022, arXiv:2205.10536.

    Example (the paper's ImageNet setting)::

        dict(loss=dict(type='mmkd.DISTLoss', beta=1.0, gamma=1.0, tau=1.0),
             student='head', teacher='head')
    """

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'DISTLoss tau must be > 0, got {tau}.')
        self.beta, self.gamma, self.tau = beta, gamma, tau
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape or \
                min(student_logits.shape) < 2:
            raise ValueError(
                'DISTLoss expects student and teacher logits of the same shape (N, K) with N, K >= 2 '
                f'(the intra-class relation correlates over the batch); got student '
                f'{tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)}.')
        y_s = torch.softmax(upcast(student_logits) / self.tau, dim=1)
        y_t = torch.softmax(upcast_target(teacher_logits) / self.tau, dim=1)
        inter = 1 - mean_pearson(y_s, y_t)
        intra = 1 - mean_pearson(y_s.t(), y_t.t())
        return self.loss_weight * self.tau ** 2 * (self.beta * inter + self.gamma * intra)
