"""Stop (or skip) at the first non-finite loss, before it reaches the weights or a checkpoint.

``tools/train.py`` adds this hook to every run (both front doors, any mmdet model); a config sets
it up, or switches it off, with a top-level ``nonfinite_guard``::

    nonfinite_guard = dict(mode='stop')                 # default: stop at the first bad iteration
    nonfinite_guard = dict(mode='skip', max_skips=10)   # skip bad iterations, stop at the 11th
    nonfinite_guard = None                              # no guard

The total loss is checked before ``backward`` (``optim_wrapper.update_params``), so a bad iteration
never changes the weights; the error names the iteration and each non-finite term
(``loss_nst=nan``). In distributed runs the ranks agree on the verdict, so they stop together
instead of one rank hanging in an all-reduce. Under a plain (non-AMP) optimizer wrapper the
gradients are checked before each step too: a finite loss can have non-finite gradients (a norm or
a square root at 0); AMP's loss scaler already skips those steps. With gradient accumulation a
skipped iteration keeps its place in the window. Checkpoints are checked before they are written: one
with a non-finite weight is refused, so the last good checkpoint is never overwritten by it.
"""
import math
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

from mmkd.registry import HOOKS

MODES = ('stop', 'skip')


class NonFiniteError(FloatingPointError):
    """A loss term or a weight became NaN or infinite."""


def _nonfinite_terms(losses: Optional[dict]) -> Dict[str, float]:
    bad = {}
    for name, value in (losses or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        total = sum(float(v.detach().float().sum()) for v in values if isinstance(v, torch.Tensor))
        if not math.isfinite(total):
            bad[name] = total
    return bad


def _bad_on_any_rank(bad: torch.Tensor) -> bool:
    """A rank's verdict, made common: every rank takes the same branch (no rank hangs in a collective)."""
    bad = bad.float()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(bad)
    return bool(bad)


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):

    priority = 'VERY_HIGH'

    def __init__(self, mode: str = 'stop', max_skips: int = 10) -> None:
        if mode not in MODES:
            raise ValueError(f"nonfinite_guard mode={mode!r}: use 'stop' or 'skip'.")
        self.mode = mode
        self.max_skips = max_skips
        self.skipped = 0
        self._losses: Optional[dict] = None
        self._window_has_gradients = False

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parse_losses = model.parse_losses

        def remembering_parse_losses(losses):
            self._losses = losses
            return parse_losses(losses)

        model.parse_losses = remembering_parse_losses
        optim_wrapper = runner.optim_wrapper
        update_params = optim_wrapper.update_params

        def guarded_update_params(loss, *args, **kwargs):
            if self._all_finite(loss):
                result = update_params(loss, *args, **kwargs)
                # After a step the next accumulation window starts empty.
                self._window_has_gradients = not optim_wrapper.should_update()
                return result
            self._bad_iteration(runner)
            self._losses = None   # nothing may keep the skipped graph alive
            self._skip_micro_batch(optim_wrapper)
            return None

        optim_wrapper.update_params = guarded_update_params
        if isinstance(optim_wrapper, OptimWrapper) and getattr(optim_wrapper, 'loss_scaler', None) is None:
            # A finite loss can still have non-finite gradients (a sqrt or a norm at 0). AMP's loss
            # scaler already skips such steps; a plain fp32/bf16 wrapper would apply them.
            names = {p: n for n, p in runner.model.named_parameters()}
            step = optim_wrapper.step

            def guarded_step(**kwargs):
                bad = self._nonfinite_gradients(optim_wrapper, names)
                if bad is None:
                    return step(**kwargs)
                self._bad_iteration(runner, f'non-finite gradient at iteration {runner.iter + 1} (finite loss): '
                                            f'{bad}')
                optim_wrapper.zero_grad()
                return None

            optim_wrapper.step = guarded_step

    def _skip_micro_batch(self, optim_wrapper) -> None:
        """A skipped iteration still counts in the gradient-accumulation window
        (``accumulative_counts``), as update_params would count it: the window keeps its place, and
        its last iteration steps with the good micro-batches accumulated so far (none: no step)."""
        optim_wrapper._inner_count += 1
        if optim_wrapper.should_update():
            if self._window_has_gradients:
                optim_wrapper.step()
            optim_wrapper.zero_grad()
            self._window_has_gradients = False

    @staticmethod
    def _all_finite(loss: torch.Tensor) -> bool:
        return not _bad_on_any_rank((~torch.isfinite(loss.detach())).any())

    @staticmethod
    def _nonfinite_gradients(optim_wrapper, names: dict) -> Optional[str]:
        """None when every gradient is finite (on every rank), else the parameters that are not."""
        grads = [p.grad for group in optim_wrapper.param_groups for p in group['params'] if p.grad is not None]
        if not grads:
            return None
        if not _bad_on_any_rank(torch.stack([(~torch.isfinite(g)).any() for g in grads]).any()):
            return None
        params = [p for group in optim_wrapper.param_groups for p in group['params']
                  if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        return ', '.join(names.get(p, '?') for p in params[:5]) + (' ...' if len(params) > 5 else '') \
            if params else 'on another rank'

    def _bad_iteration(self, runner, what: Optional[str] = None) -> None:
        if what is None:
            terms = _nonfinite_terms(self._losses)
            where = (', '.join(f'{name}={value}' for name, value in terms.items())
                     or 'on another rank')
            what = f'non-finite loss at iteration {runner.iter + 1}: {where}'
        if self.mode == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            print_log(f'{what}; skipped without updating the weights ({self.skipped} of at most '
                      f'{self.max_skips}).', logger='current', level=30)
            return
        skipped = f' after skipping {self.skipped} bad iterations' if self.skipped else ''
        raise NonFiniteError(
            f'{what}{skipped}. Training stopped before this update: the weights and the checkpoints '
            f'in {runner.work_dir} are from the last good iteration (resume with --resume). Lower the '
            'learning rate or the loss_weight of the named term, clip gradients '
            '(optim_wrapper.clip_grad), or allow a few bad iterations with '
            "nonfinite_guard = dict(mode='skip', max_skips=K).")

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for name, value in checkpoint.get('state_dict', {}).items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() and \
                    not bool(torch.isfinite(value).all()):
                raise NonFiniteError(
                    f'refusing to save the checkpoint of iteration {runner.iter}: weight {name} is not '
                    f'finite. The checkpoints already in {runner.work_dir} are untouched.')
