"""CWD: Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction" (ICCV 2021)."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmkd.registry import MODELS
from .utils import check_same_channels, full_precision, resize_to, upcast, upcast_target


@MODELS.register_module()
class CWDLoss(nn.Module):
    r"""Channel-wise distillation: each channel's activation map becomes a distribution over its
    H x W positions, :math:`\phi(y_c)_i = \exp(y_{c,i} / \tau) / \sum_j \exp(y_{c,j} / \tau)`, and
    the student's is pulled to the teacher's:

    .. math::
        L_{CWD} = \frac{\tau^2}{N C} \sum_{n, c} \sum_i \phi(y^T_{n,c})_i
                  \log \frac{\phi(y^T_{n,c})_i}{\phi(y^S_{n,c})_i}

    Paper eq. 3 (with the per-image sum averaged over the batch) and mmrazor's
    ``ChannelWiseDivergence`` (the authors' released form) agree exactly. Student and teacher need
    the same channels (FPN levels of two detectors with 256 channels have them; otherwise add a
    connector). mmrazor requires equal H x W as well; here a student map of another size is first
    resized (bilinear) to the teacher's, as AT and NST do: backbones whose strided layers round
    differently (Inception-BN vs ResNet at 1000 x 600: 149 x 249 vs 150 x 250 at P2) still pair.

    Paper: C. Shu, Y. Liu, J. Gao, Z. Yan, C. Shen, "Channel-wise Knowledge Distillation for Dense
    Prediction", ICCV 2021, arXiv:2011.13256.

    Example (an FPN level; mmrazor's Faster R-CNN configs use tau=1, loss_weight=10)::

        dict(loss=dict(type='mmkd.CWDLoss', tau=1.0, loss_weight=10.0),
             student=dict(module='neck', index=0), teacher=dict(module='neck', index=0))
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'CWDLoss tau must be > 0, got {tau}.')
        self.tau = tau
        self.loss_weight = loss_weight

    @full_precision
    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_same_channels('CWDLoss', student_feat, teacher_feat)
        n, c = student_feat.shape[:2]
        student = resize_to(upcast(student_feat), teacher_feat.shape[-2:])
        log_p_s = F.log_softmax(student.flatten(2) / self.tau, dim=2)
        log_p_t = F.log_softmax(upcast_target(teacher_feat).flatten(2) / self.tau, dim=2)
        kl = F.kl_div(log_p_s, log_p_t, reduction='sum', log_target=True)
        return self.loss_weight * self.tau ** 2 * kl / (n * c)
