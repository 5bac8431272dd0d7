"""Stop (or skip) at a non-finite loss or gradient, before it reaches the weights or a checkpoint.

``tools/train.py`` adds this hook to every run (both front doors, any mmdet model); a config sets
it up, or switches it off, with a top-level ``nonfinite_guard``::

    nonfinite_guard = dict(mode='stop')                 # default: stop at a bad iteration
    nonfinite_guard = dict(mode='skip', max_skips=10)   # skip bad iterations, stop at the 11th
    nonfinite_guard = dict(check_interval=1)            # read the verdict every iteration
    nonfinite_guard = None                              # no guard

It decides in one of two ways, chosen from the optimizer wrapper when training starts:

* **On the device** (no host synchronisation in a training step) where the update itself can be
  skipped on the device: an AMP wrapper (its loss scaler skips non-finite steps) or an optimizer
  that takes a ``found_inf`` flag (torch's fused SGD/Adam/AdamW, ``optimizer=dict(..., fused=True)``).
  Each iteration the guard records, on the device, whether the loss and each term is finite; before
  a plain wrapper's step it checks every gradient in one fused pass (GradScaler's kernel, with scale
  1) and hands the flag to the optimizer, which then leaves weights and state untouched. The host
  reads the flags once every ``check_interval`` iterations (default: the logger's interval), before
  each checkpoint and at the end of training: ``stop`` raises there, naming the first bad
  iteration and its non-finite terms, ``skip`` counts. So no non-finite update is ever applied; in
  ``stop`` mode the good iterations between the bad one and the next check still train. With
  gradient accumulation a bad micro-batch spoils its window's summed gradient: the window's step
  is skipped. A plain wrapper's first step of a run is checked on the host (torch's fused SGD leaves
  an uninitialised momentum buffer when its first step is skipped).
* **On the host** otherwise (a plain optimizer, or ``check_interval=1``): the total loss is checked
  before ``backward``, so a bad iteration never changes the weights, and the gradients before each
  step (a finite loss can have non-finite gradients: a norm or a square root at 0). The error names
  the iteration, each non-finite term (``loss_nst=nan``) or the parameters with non-finite
  gradients. With gradient accumulation a skipped micro-batch keeps its place in the window.

In distributed runs the ranks agree on every verdict (a max all-reduce of the flag), so they skip
or stop together instead of one rank hanging in an all-reduce. Checkpoints are checked before they
are written: one with a non-finite weight is refused, so the last good checkpoint is never
overwritten by it.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.hooks import CheckpointHook, Hook, LoggerHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

from mmkd.registry import HOOKS

MODES = ('stop', 'skip')
# The guard's wrappers run eagerly under a config's compile=True (mmengine compiles the train step
# that calls them): traced, the optimizer's found_inf handshake (set, step, delete) was lost.
eager = torch.compiler.disable


class NonFiniteError(FloatingPointError):
    """A loss term or a weight became NaN or infinite."""


def _term_values(losses: Optional[dict]) -> Dict[str, torch.Tensor]:
    """Each logged term summed to one value: non-finite exactly when an element is."""
    values = {}
    for name, value in (losses or {}).items():
        parts = [v.detach().float().sum() for v in (value if isinstance(value, (list, tuple)) else [value])
                 if isinstance(v, torch.Tensor)]
        if parts:
            values[name] = torch.stack(parts).sum()
    return values


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _bad_on_any_rank(bad: torch.Tensor) -> bool:
    """A rank's verdict, made common: every rank takes the same branch (no rank hangs in a collective)."""
    bad = bad.float()
    if _distributed():
        dist.all_reduce(bad)
    return bool(bad)


def _nonfinite_flag(tensors: List[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """0-d float on ``like``'s device: 1.0 if any element of ``tensors`` is NaN or infinite. One fused
    kernel per device and dtype (GradScaler's check, unscaling by exactly 1), no host read."""
    found = torch.zeros((), device=like.device)
    groups: Dict[Tuple[torch.device, torch.dtype], List[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for (device, _), group in groups.items():
        flag = torch.zeros((), device=device)
        torch._amp_foreach_non_finite_check_and_unscale_(group, flag, torch.ones((), device=device))
        found = torch.maximum(found, flag.to(found.device))
    return found


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):

    priority = 'VERY_HIGH'

    def __init__(self, mode: str = 'stop', max_skips: int = 10, check_interval: Optional[int] = None) -> None:
        if mode not in MODES:
            raise ValueError(f"nonfinite_guard mode={mode!r}: use 'stop' or 'skip'.")
        if check_interval is not None and check_interval < 1:
            raise ValueError(f'nonfinite_guard check_interval={check_interval}: give a number >= 1 (or None '
                             "for the logger's interval).")
        self.mode = mode
        self.max_skips = max_skips
        self.check_interval = check_interval
        self.skipped = 0
        self.on_device = False
        self._losses: Optional[dict] = None
        self._window_has_gradients = False
        self._pending: Optional[dict] = None   # the device-side record since the last check
        self._stepped = False                   # has the device path's optimizer stepped in this run?

    # ----------------------------------------------------------------- set-up
    def before_train(self, runner) -> None:
        self._pending, self._stepped = None, False
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parse_losses = model.parse_losses

        def remembering_parse_losses(losses):
            self._losses = losses
            return parse_losses(losses)

        model.parse_losses = remembering_parse_losses
        optim_wrapper = runner.optim_wrapper
        names = {p: n for n, p in runner.model.named_parameters()}
        amp = getattr(optim_wrapper, 'loss_scaler', None) is not None
        skips_on_device = isinstance(optim_wrapper, OptimWrapper) and (
            amp or getattr(optim_wrapper.optimizer, '_step_supports_amp_scaling', False))
        self.on_device = skips_on_device and self.check_interval != 1
        if self.check_interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self.check_interval = loggers[0].interval if loggers else 50
        if self.on_device:
            self._guard_on_device(runner, optim_wrapper, names, amp)
        else:
            self._guard_on_host(runner, optim_wrapper, names, amp)

    def _guard_on_host(self, runner, optim_wrapper, names: dict, amp: bool) -> None:
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

        optim_wrapper.update_params = eager(guarded_update_params)
        if isinstance(optim_wrapper, OptimWrapper) and not amp:
            # AMP's loss scaler already skips steps with non-finite gradients; a plain wrapper would apply them.
            step = optim_wrapper.step

            def guarded_step(**kwargs):
                bad = self._nonfinite_gradients(optim_wrapper, names)
                if bad is None:
                    return step(**kwargs)
                self._bad_iteration(runner, f'non-finite gradient at iteration {runner.iter + 1} (finite loss): '
                                            f'{bad}')
                optim_wrapper.zero_grad()
                return None

            optim_wrapper.step = eager(guarded_step)

    def _guard_on_device(self, runner, optim_wrapper, names: dict, amp: bool) -> None:
        update_params = optim_wrapper.update_params

        def recording_update_params(loss, *args, **kwargs):
            self._record_loss(loss, runner.iter + 1)
            self._losses = None
            return update_params(loss, *args, **kwargs)

        optim_wrapper.update_params = eager(recording_update_params)
        if amp:
            return   # the loss scaler skips every step with a non-finite gradient, on the device with fused optimizers
        optimizer = optim_wrapper.optimizer
        step = optim_wrapper.step
        host_step = self._guard_on_host_step(runner, optim_wrapper, names, step)

        def device_guarded_step(**kwargs):
            params = [p for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
            if not params:
                return step(**kwargs)
            if not self._stepped:
                return host_step(**kwargs)
            found = _nonfinite_flag([p.grad for p in params], params[0])
            window = self._pending['window_loss_bad'] if self._pending else None
            if window is not None:
                found = torch.maximum(found, window.to(found.device))
            if _distributed():
                dist.all_reduce(found, op=dist.ReduceOp.MAX)
            self._record_step(found, window)
            optimizer.found_inf = found   # read by torch's fused kernels: 1 leaves weights and state as they are
            try:
                return step(**kwargs)
            finally:
                del optimizer.found_inf

        optim_wrapper.step = eager(device_guarded_step)

    def _guard_on_host_step(self, runner, optim_wrapper, names: dict, step):
        """The device path's steps until one has been applied, decided on the host: the window's
        loss flag, then the gradients, as the host path does (usually just the first step)."""
        def host_step(**kwargs):
            window = self._pending['window_loss_bad'] if self._pending else None
            if window is not None and _bad_on_any_rank(window):
                self.check(runner)   # stop: raises; skip: counts this iteration and clears the record
                self._pending['window_loss_bad'] = None
                optim_wrapper.zero_grad()
                return None
            if self._pending:
                self._pending['window_loss_bad'] = None
            bad = self._nonfinite_gradients(optim_wrapper, names)
            if bad is None:
                self._stepped = True
                return step(**kwargs)
            self._bad_iteration(runner, f'non-finite gradient at iteration {runner.iter + 1} (finite loss): {bad}')
            optim_wrapper.zero_grad()
            return None
        return host_step

    # ----------------------------------------------------------------- device-side record
    def _record_loss(self, loss: torch.Tensor, iteration: int) -> None:
        """Flags of this iteration, on the loss's device: any non-finite loss, the first bad
        iteration, and the term values of that iteration (to name them at the check)."""
        values = _term_values(self._losses)
        names = tuple(values)
        bad = ~torch.isfinite(loss.detach().float().sum())
        p = self._pending
        if p is None or p['names'] != names:
            if p is not None:
                p['earlier'].append((p['names'], p['first_values']))
            device = loss.device
            earlier = p['earlier'] if p is not None else []
            p = self._pending = dict(
                names=names, earlier=earlier,
                first_values=torch.zeros(len(names), device=device),
                iteration=p['iteration'] if p is not None else torch.full((), iteration - 1, device=device),
                first_loss=p['first_loss'] if p is not None else torch.full((), -1, device=device),
                first_grad=p['first_grad'] if p is not None else torch.full((), -1, device=device),
                bad_iterations=p['bad_iterations'] if p is not None else torch.zeros((), device=device),
                window_loss_bad=None)
        p['iteration'] += 1   # the iteration number kept on the device: no host-to-device copy a step
        new = bad & (p['first_loss'] < 0)
        p['first_loss'] = torch.where(new, p['iteration'], p['first_loss'])
        if names:
            p['first_values'] = torch.where(new, torch.stack(list(values.values())), p['first_values'])
        p['bad_iterations'] += bad.float()
        p['window_loss_bad'] = bad.float() if p['window_loss_bad'] is None else \
            torch.maximum(p['window_loss_bad'], bad.float())

    def _record_step(self, found: torch.Tensor, window: Optional[torch.Tensor]) -> None:
        """A step skipped for non-finite gradients under a finite loss counts as one bad iteration."""
        p = self._pending
        grad_only = found if window is None else found * (1 - window)
        p['first_grad'] = torch.where((grad_only > 0) & (p['first_grad'] < 0), p['iteration'], p['first_grad'])
        p['bad_iterations'] += grad_only
        p['window_loss_bad'] = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # Also where a checkpoint follows (this hook runs before CheckpointHook's): checkpoints are
        # saved by rank 0 alone, so the check that must precede them, a collective, happens here.
        if self.on_device and (self.every_n_train_iters(runner, self.check_interval) or self.is_last_train_iter(runner)
                               or self._iteration_checkpoint_due(runner)):
            self.check(runner)

    def after_train_epoch(self, runner) -> None:
        if self.on_device:
            self.check(runner)   # before an epoch's checkpoint

    def after_train(self, runner) -> None:
        if self.on_device:
            self.check(runner)

    def _iteration_checkpoint_due(self, runner) -> bool:
        return any(isinstance(h, CheckpointHook) and not h.by_epoch and self.every_n_train_iters(runner, h.interval)
                   for h in runner.hooks)

    def check(self, runner, collective: bool = True) -> None:
        """Read the device-side record (one host synchronisation): ``stop`` raises at a bad
        iteration, ``skip`` counts the skipped ones and raises past ``max_skips``. ``collective``:
        the ranks agree first (every rank must call it)."""
        p = self._pending
        if p is None:
            return
        record = torch.stack([p['bad_iterations'], p['first_loss'].float(), p['first_grad'].float()])
        if collective and _distributed():
            # Every rank takes the same branch: the most bad iterations any rank saw (the per-step
            # flags are already common; a loss flag is each rank's own).
            most = record[:1].clone()
            dist.all_reduce(most, op=dist.ReduceOp.MAX)
            record[0] = most[0]
        bad, first_loss, first_grad = record.tolist()
        p['bad_iterations'].zero_()
        p['first_loss'].fill_(-1)
        p['first_grad'].fill_(-1)
        segments = p['earlier'] + [(p['names'], p['first_values'].clone())]
        p['earlier'] = []
        p['first_values'].zero_()   # the next window names only its own terms
        if not bad:
            return
        if first_loss >= 0 and (first_grad < 0 or first_loss <= first_grad):
            terms = [f'{name}={value}' for names, values in segments for name, value in zip(names, values.tolist())
                     if not math.isfinite(value)]
            what = f'non-finite loss at iteration {int(first_loss)}: {", ".join(terms) or "on another rank"}'
        elif first_grad < 0:
            what = f'non-finite loss or gradient on another rank before iteration {runner.iter + 1}'
        else:
            what = (f'non-finite gradient at iteration {int(first_grad)} (finite loss; '
                    'nonfinite_guard=dict(check_interval=1) names the parameters)')
        bad = int(bad)
        if self.mode == 'skip' and self.skipped + bad <= self.max_skips:
            self.skipped += bad
            print_log(f'{what}: {bad} bad iteration(s) up to iteration {runner.iter + 1}, each skipped on the '
                      f'device without updating the weights ({self.skipped} of at most {self.max_skips}).',
                      logger='current', level=30)
            return
        self.skipped += bad
        skipped = f' ({self.skipped} bad iterations, more than max_skips={self.max_skips})' if self.mode == 'skip' else ''
        raise NonFiniteError(
            f'{what}{skipped}. Training stopped at iteration {runner.iter + 1}; no non-finite update was '
            f'applied (each was skipped on the device) and no checkpoint was written after it: resume from '
            f'the last checkpoint in {runner.work_dir} (--resume). ' + self.REMEDY)

    # ----------------------------------------------------------------- host-side checks
    REMEDY = ('Lower the learning rate or the loss_weight of the named term, clip gradients '
              '(optim_wrapper.clip_grad), or allow a few bad iterations with '
              "nonfinite_guard = dict(mode='skip', max_skips=K).")

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
        if not _bad_on_any_rank(_nonfinite_flag(grads, grads[0])):
            return None
        params = [p for group in optim_wrapper.param_groups for p in group['params']
                  if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        return ', '.join(names.get(p, '?') for p in params[:5]) + (' ...' if len(params) > 5 else '') \
            if params else 'on another rank'

    def _bad_iteration(self, runner, what: Optional[str] = None) -> None:
        if what is None:
            terms = {name: float(value) for name, value in _term_values(self._losses).items()}
            where = (', '.join(f'{name}={value}' for name, value in terms.items() if not math.isfinite(value))
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
            f'in {runner.work_dir} are from the last good iteration (resume with --resume). ' + self.REMEDY)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.on_device:
            # Rank 0 alone saves: a local read (the collective check ran in after_train_iter/epoch).
            self.check(runner, collective=False)
        for name, value in checkpoint.get('state_dict', {}).items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() and \
                    not bool(torch.isfinite(value).all()):
                raise NonFiniteError(
                    f'refusing to save the checkpoint of iteration {runner.iter}: weight {name} is not '
                    f'finite. The checkpoints already in {runner.work_dir} are untouched.')
