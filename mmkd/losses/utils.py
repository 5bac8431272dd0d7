"""Input handling shared by the distillation losses.

Every loss computes in at least float32 (fp16/bf16 inputs are promoted, float64 stays float64 so
that gradcheck works), outside any autocast region, and never sends gradient into the teacher.
"""
import functools
import warnings
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def compute_dtype(x: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def upcast(x: Tensor) -> Tensor:
    """A student input in the loss's compute dtype (float32, or float64 kept), gradient flowing."""
    return x.to(compute_dtype(x))


def upcast_target(x: Tensor) -> Tensor:
    """A teacher input (the target) in the compute dtype, detached: no gradient reaches the teacher."""
    return x.detach().to(compute_dtype(x))


#: ``form=``: every loss whose paper and authors' code differ computes either; the docstring says how.
FORMS = ('paper', 'code')


def choose_form(loss: str, form: str, legacy_name: str, legacy_value: Optional[str],
                legacy_forms: Dict[str, str]) -> str:
    """``form`` ('paper' or 'code'), or the form a pre-0.2 keyword (``ATLoss(mode=)``,
    ``FitNetLoss(reduction=)``, ``FSPLoss(reduction=)``) names, with a DeprecationWarning."""
    if legacy_value is not None:
        if legacy_value not in legacy_forms:
            raise ValueError(f'{loss} {legacy_name} must be one of {sorted(legacy_forms)}, got {legacy_value!r} '
                             f"(now form='paper' or 'code').")
        warnings.warn(f"{loss}({legacy_name}={legacy_value!r}) is {loss}(form={legacy_forms[legacy_value]!r}); "
                      f'{legacy_name} will be removed.', DeprecationWarning, stacklevel=3)
        return legacy_forms[legacy_value]
    if form not in FORMS:
        raise ValueError(f"{loss} form must be 'paper' or 'code', got {form!r}.")
    return form


def full_precision(forward: Callable) -> Callable:
    """Run a loss's forward with autocast off, so its matmuls stay in (at least) float32."""

    @functools.wraps(forward)
    def wrapper(self, *inputs: Tensor) -> Tensor:
        device_type = inputs[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return forward(self, *inputs)

    return wrapper


def check_feature_maps(loss: str, student: Tensor, teacher: Tensor) -> None:
    """Both (N, C, H, W) with the same N; channels and spatial sizes may differ."""
    if student.dim() != 4 or teacher.dim() != 4 or student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f'{loss} expects student and teacher feature maps of shape (N, C, H, W) with the same '
            f'N; got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}.')


def check_same_channels(loss: str, student: Tensor, teacher: Tensor) -> None:
    """Feature maps (see check_feature_maps) with as many student as teacher channels."""
    check_feature_maps(loss, student, teacher)
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(f'{loss} needs as many student as teacher channels; got student '
                         f'{tuple(student.shape)} and teacher {tuple(teacher.shape)}. '
                         'Add a connector to the term to map the student to the teacher.')


def check_same_shape(loss: str, student: Tensor, teacher: Tensor, hint: str = '') -> None:
    if student.shape != teacher.shape:
        raise ValueError(
            f'{loss} needs student and teacher tensors of the same shape; got student '
            f'{tuple(student.shape)} and teacher {tuple(teacher.shape)}.{hint}')


def resize_to(student: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resize (align_corners=False) of the student map to the teacher's H x W."""
    if tuple(student.shape[-2:]) == tuple(size):
        return student
    return F.interpolate(student, size=size, mode='bilinear', align_corners=False)
