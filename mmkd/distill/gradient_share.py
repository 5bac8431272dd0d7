"""How strongly each distillation term pulls on the student, next to the task loss.

The gradient share of a term is ``||d L_term / d theta_T|| / ||d L_task / d theta_T||`` over the
trainable student parameters theta_T that the term reaches (a backbone term does not reach a
detector's RoI head, whose task gradient would otherwise dominate the denominator and make shares
of different taps incomparable): around 1 the term pulls as hard as the task on the parameters it
acts on; far above it drowns the task; far below it barely acts. In multi-process runs both
gradients are averaged over the ranks first, as DDP averages the gradients the optimizer applies.
The task gradient of a mean loss carries batch noise that shrinks with the (global) batch size, so
shares compare at equal batch sizes. It costs one extra backward pass per term and one for the
task (autograd.grad on the retained graph), so the engine measures it every ``interval`` iterations
only (and on each iteration of a weight calibration).
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from torch import Tensor, nn

#: A term's ``auto_weight=dict(share=..., iters=...)`` needs ``share``; ``iters`` defaults to this.
CALIBRATION_ITERS = 10


def gradients(loss: Tensor, params: Sequence[Tensor]) -> List[Optional[Tensor]]:
    """d loss / d params (None where the loss does not reach a parameter), averaged over the ranks
    as DDP averages them; the graph stays for the step's own backward."""
    if not loss.requires_grad:
        grads = [None] * len(params)
    else:
        grads = list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))
    if get_world_size() == 1:
        return [g.detach() if g is not None else None for g in grads]
    device = params[0].device
    reached = torch.tensor([g is not None for g in grads], dtype=torch.float32, device=device)
    all_reduce(reached, op='max')   # the same graph on every rank; a rank with no data still agrees
    kept = [i for i, r in enumerate(reached.tolist()) if r]
    if not kept:
        return [None] * len(params)
    flat = torch.cat([(grads[i] if grads[i] is not None else torch.zeros_like(params[i])).detach().float().flatten()
                      for i in kept])
    all_reduce(flat, op='mean')
    out: List[Optional[Tensor]] = [None] * len(params)
    for i, chunk in zip(kept, flat.split([params[i].numel() for i in kept])):
        out[i] = chunk
    return out


def share(term_grads: Sequence[Optional[Tensor]], task_grads: Sequence[Optional[Tensor]]) -> float:
    """||term gradient|| / ||task gradient|| over the parameters the term reaches; NaN where the
    task has no gradient there (a hint stage)."""
    reached = [i for i, g in enumerate(term_grads) if g is not None]
    if not reached:
        return 0.0
    term = sum(float(term_grads[i].float().pow(2).sum()) for i in reached)
    task = sum(float(task_grads[i].float().pow(2).sum()) for i in reached if task_grads[i] is not None)
    return math.sqrt(term) / math.sqrt(task) if task > 0 else math.nan


def task_loss(losses: Dict[str, Union[Tensor, List[Tensor]]], exclude: Sequence[str]) -> Tensor:
    """The sum of the loss dict's task losses (keys containing 'loss', as the runner sums them)."""
    total = 0.0
    for key, value in losses.items():
        if 'loss' in key and key not in exclude:
            total = total + (sum(v.sum() for v in value) if isinstance(value, (list, tuple)) else value.sum())
    return total if isinstance(total, Tensor) else torch.zeros(())


class AutoWeight(nn.Module):
    """``loss=dict(..., loss_weight='auto')`` with ``auto_weight=dict(share=s, iters=n)``: over the
    first n iterations the term's weight is s / (mean measured gradient share at weight 1), then it
    is frozen and logged. Buffers, so the calibration survives a resume (saved with the Distiller's
    state dict, or by the hook in the checkpoint); every buffer is finite at every iteration (the
    non-finite guard refuses to save anything else): ``weight`` is 0 until frozen, and frozen means
    ``count == iters``. Python mirrors of the buffers serve each iteration, so reading the weight
    never waits for the device."""

    def __init__(self, term: str, share: float, iters: int = CALIBRATION_ITERS) -> None:
        super().__init__()
        if not share > 0 or iters < 1:
            raise ValueError(f"term '{term}': auto_weight needs share > 0 and iters >= 1, got share={share}, "
                             f'iters={iters}.')
        self.term, self.share, self.iters = term, share, iters
        self.register_buffer('ratio_sum', torch.zeros((), dtype=torch.float64))
        self.register_buffer('count', torch.zeros((), dtype=torch.int64))
        self.register_buffer('weight', torch.zeros((), dtype=torch.float64))
        self._ratio_sum, self._count, self._weight = 0.0, 0, 0.0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._ratio_sum, self._count = float(self.ratio_sum), int(self.count)
        if not self.frozen:
            self.weight.zero_()   # older checkpoints marked "not calibrated" with NaN
        self._weight = float(self.weight)
        if not math.isfinite(self._weight):
            raise ValueError(f"term '{self.term}': the checkpoint's calibrated loss_weight is {self._weight}.")

    @property
    def frozen(self) -> bool:
        return self._count >= self.iters

    def current(self) -> float:
        """The frozen weight, or the estimate so far (1 before the first measurement)."""
        if self.frozen:
            return self._weight
        return self.share * self._count / self._ratio_sum if self._count and self._ratio_sum > 0 else 1.0

    def add(self, ratio: Optional[float]) -> None:
        """One measurement of the term's gradient share at weight 1. None (the task had no gradient)
        and non-finite ratios (an overflowing fp16 step) are not counted."""
        if self.frozen or ratio is None:
            return
        if not math.isfinite(ratio):
            print_log(f"term '{self.term}': loss_weight='auto' skipped a non-finite gradient share ({ratio}) at "
                      'weight 1; it calibrates from finite measurements only.', logger='current', level=30)
            return
        if ratio <= 0:
            raise RuntimeError(f"term '{self.term}': loss_weight='auto' measured no gradient of the term on "
                               "the student's parameters: its taps do not depend on them.")
        self._ratio_sum += ratio
        self._count += 1
        self.ratio_sum.fill_(self._ratio_sum)
        self.count.fill_(self._count)
        if self.frozen:
            mean = self._ratio_sum / self._count
            self._weight = self.share / mean
            self.weight.fill_(self._weight)
            print_log(f"distillation term '{self.term}': loss_weight='auto' -> {self._weight:.6g} (target "
                      f'gradient share {self.share:g}; mean share at weight 1 over the first '
                      f'{self._count} iterations: {mean:.6g}); frozen from here on.', logger='current')
