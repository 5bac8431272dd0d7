"""Gradient-based attention transfer: Zagoruyko & Komodakis (ICLR 2017), section 3.2."""
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import check_same_shape, full_precision, upcast, upcast_target


@MODELS.register_module()
class GradATLoss(nn.Module):
    r"""Match the input gradients of the task losses, :math:`J = \partial L / \partial x`:

    .. math::
        L = \frac{\beta}{2} \cdot \frac{1}{N} \sum_n \| J_{S,n} - J_{T,n} \|_2

    with :math:`\beta` = ``loss_weight``. Training through it needs double backpropagation, which
    ``mmkd.Distiller`` does for a term ``dict(loss=dict(type='mmkd.GradATLoss', loss_weight=beta))``
    (no taps: the "tap" is the input image).

    Paper: S. Zagoruyko, N. Komodakis, ICLR 2017 (arXiv:1612.03928), section 3.2.

    Example (``mmkd.Distiller`` only: double backpropagation)::

        dict(loss=dict(type='mmkd.GradATLoss', loss_weight=1.0))
    """

    # forward(student_grad, teacher_grad): the engine binds input gradients, not taps, to *_grad.
    term_name = 'grad_at'  # logged as loss_grad_at

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_grad: Tensor, teacher_grad: Tensor) -> Tensor:
        check_same_shape('GradATLoss', student_grad, teacher_grad)
        diff = upcast(student_grad) - upcast_target(teacher_grad)
        return self.loss_weight / 2 * diff.flatten(1).norm(dim=1).mean()
