"""Stop at a signal after the iteration in progress, with a checkpoint of that iteration: preemption,
time limits, ``scancel`` and Ctrl-C lose no finished iteration.

``tools/train.py`` adds this hook to every run. On SIGTERM (Slurm's preemption, ``scancel`` and time
limit; torchrun forwards it to its workers), SIGUSR1 (Slurm's warning before the time limit, asked for
with ``--signal``) or SIGINT (Ctrl-C) the run

1. finishes the iteration in progress (the handler only records the signal: nothing is interrupted,
   so a second signal during the save cannot corrupt it either; a stuck run still dies on SIGKILL);
2. agrees with the other ranks at the end of every iteration (``agree_interval``), so that all stop
   after the SAME iteration whichever rank got the signal: a max all-reduce of one CPU flag over a
   gloo group (no device synchronisation under NCCL; its cost: tools/benchmark_stop.py);
3. saves a checkpoint of that iteration through the CheckpointHook (rank 0 writes it, atomically;
   an iteration the hook has just saved is not saved twice), named ``iter_<N>.pth`` in iteration
   loops and ``epoch_<E>_iter_<N>.pth`` mid-epoch in epoch loops (``mmkd.ResumableEpochBasedTrainLoop``
   skips the batches of that epoch already trained on resume), and points ``last_checkpoint`` at it;
4. raises :class:`TrainingStopped`; ``tools/train.py`` logs where it stopped and the command that
   continues it, and exits with :data:`STOPPED_EXIT_CODE` (75, ``EX_TEMPFAIL``: try again).

``tools/train.py`` adds it to every run; a config sets it up, or switches it off, with a top-level
``graceful_stop`` (or lists the hook itself; mmdet's own tools/train.py needs that)::

    graceful_stop = dict(signals=('SIGTERM', 'SIGUSR1'))   # Ctrl-C kills at once, as Python's default
    graceful_stop = None                                   # no stop at signals
    custom_hooks = [dict(type='mmkd.GracefulStopHook')]
"""
import logging
import os
import os.path as osp
import signal
import threading
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmkd.registry import HOOKS, LOOPS

from .checkpoint_files import write_atomically
from .nonfinite_guard import NonFiniteGuardHook

STOP_SIGNALS = ('SIGTERM', 'SIGUSR1', 'SIGINT')
STOPPED_EXIT_CODE = 75   # sysexits' EX_TEMPFAIL: stopped cleanly with a checkpoint; run again to continue


class TrainingStopped(Exception):
    """Training stopped at a signal after a whole iteration, with a checkpoint of it."""

    def __init__(self, signal_name: str, iteration: int, checkpoint: Optional[str]) -> None:
        self.signal_name, self.iteration, self.checkpoint = signal_name, iteration, checkpoint
        super().__init__(f'{signal_name}: stopped after iteration {iteration}'
                         + (f', checkpoint {checkpoint}' if checkpoint else ''))


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@HOOKS.register_module()
class GracefulStopHook(Hook):
    """See the module's doc.

    Args:
        signals: the names of the signals that stop the run.
        agree_interval: in multi-process runs, the ranks agree (one all-reduce of a CPU flag, about
            0.3 ms on the test machine) every this many iterations; a signal then stops the run after
            the next such iteration, still with a checkpoint of it. 1 (default): after the iteration
            in progress. A single process checks every iteration at no cost.
    """

    priority = 'LOWEST'   # after CheckpointHook (VERY_LOW): reuse its checkpoint of this iteration

    def __init__(self, signals: Sequence[str] = STOP_SIGNALS, agree_interval: int = 1) -> None:
        if agree_interval < 1:
            raise ValueError(f'GracefulStopHook(agree_interval={agree_interval}): give 1 or more iterations.')
        self.agree_interval = agree_interval
        unknown = [name for name in signals if not isinstance(getattr(signal, str(name), None), signal.Signals)]
        if unknown:
            raise ValueError(f'GracefulStopHook(signals={list(signals)}): {unknown} are not signal names '
                             f'(e.g. {", ".join(STOP_SIGNALS)}).')
        self.signals = tuple(signals)
        self.received: Optional[str] = None
        self._previous = {}
        self._group = None
        self._fork_hook = False

    # ------------------------------------------------------------------ signals
    def _in_forked_child(self) -> None:
        # A process forked while the handlers are set (a data loader or multiprocessing.Pool worker,
        # e.g. mmdet's eval_map) gets the previous ones back at once: a Python-level handler runs only
        # when its interpreter gets control, so a worker blocked in C (a lock held at the fork) would
        # never die of the SIGTERM a pool's terminate() sends it, and the run would hang.
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        # A handler runs between two bytecodes of the main thread, maybe inside a logging call: write
        # to stderr directly instead of taking the logging locks.
        if self.received is None:
            self.received = name
            note = f'[mmkd] {name} received (pid {os.getpid()}): stopping after the iteration in progress, with a checkpoint.\n'
        else:
            note = f'[mmkd] {name} received again: already stopping after this iteration (SIGKILL ends it at once).\n'
        os.write(2, note.encode())

    def before_train(self, runner) -> None:
        if threading.current_thread() is not threading.main_thread():
            print_log('GracefulStopHook: training runs outside the main thread, where Python cannot take '
                      'signals: a signal stops this run without a checkpoint.', logger='current', level=logging.WARNING)
            return
        for name in self.signals:
            signum = getattr(signal, name)
            self._previous[signum] = signal.signal(signum, self._handle)
        if not self._fork_hook:
            os.register_at_fork(after_in_child=self._in_forked_child)   # cannot be unregistered: once
            self._fork_hook = True
        if _distributed():
            # A CPU flag over gloo: agreeing needs no device synchronisation under NCCL.
            self._group = dist.new_group(backend='gloo') if dist.get_backend() != 'gloo' else dist.group.WORLD

    def after_run(self, runner) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    # ------------------------------------------------------------------ stopping
    def _stop_agreed(self) -> Optional[str]:
        """The signal to stop for, the same on every rank (None: go on)."""
        if not _distributed():
            return self.received
        names = [None, *STOP_SIGNALS, *(s for s in self.signals if s not in STOP_SIGNALS)]
        flag = torch.tensor([names.index(self.received) if self.received else 0], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return names[int(flag)] if int(flag) else None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if _distributed() and (runner.iter + 1) % self.agree_interval:
            return   # the ranks agree every agree_interval iterations (all take the same ones)
        name = self._stop_agreed()
        if name is None:
            return
        self.received = self.received or name
        iteration = runner.iter + 1
        checkpoint = self._save(runner, iteration)
        self.after_run(runner)   # the handlers go back before the exception leaves the runner
        raise TrainingStopped(name, iteration, checkpoint)

    def _save(self, runner, iteration: int) -> Optional[str]:
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        if hook is None:
            print_log('GracefulStopHook: the run has no CheckpointHook: stopping without a checkpoint.',
                      logger='current', level=logging.WARNING)
            return None
        # The run's own checks before a checkpoint (the non-finite guard's verdict) come first.
        for other in runner.hooks:
            if isinstance(other, NonFiniteGuardHook) and other.on_device:
                other.check(runner)
        mid_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        if not mid_epoch:
            if hook.last_ckpt is None or osp.basename(hook.last_ckpt) != hook.filename_tmpl.format(iteration):
                hook._save_checkpoint(runner)   # iter_<N>.pth, with the hook's bookkeeping and last_checkpoint
            return hook.last_ckpt
        name = f'epoch_{runner.epoch + 1}_iter_{iteration}.pth'
        runner.save_checkpoint(hook.out_dir, name, save_optimizer=hook.save_optimizer,
                               save_param_scheduler=hook.save_param_scheduler,
                               meta=dict(epoch=runner.epoch, iter=iteration), by_epoch=False,
                               backend_args=hook.backend_args)
        path = osp.join(hook.out_dir, name)
        if runner.rank == 0:
            write_atomically(path, osp.join(runner.work_dir, 'last_checkpoint'))
        return path


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's epoch loop, resumable in the middle of an epoch: resumed from a checkpoint written
    after iteration ``N`` of an epoch (GracefulStopHook's ``epoch_<E>_iter_<N>.pth``), it skips the
    batches of that epoch already trained on (they are loaded, not trained: the sampler's order is
    the seeded one of that epoch), as mmengine's iteration loop does on resume."""

    def run_epoch(self) -> None:
        done = self._iter - self._epoch * len(self.dataloader)
        if done <= 0:
            return super().run_epoch()
        print_log(f'Resuming epoch {self._epoch + 1} after its iteration {done}: skipping the {done} batches '
                  'already trained on.', logger='current', level=logging.WARNING)
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        for idx, data_batch in enumerate(self.dataloader):
            if idx >= done:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
