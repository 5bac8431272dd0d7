"""When a distillation term is active, and with what weight, as a function of training progress.

Schedules depend only on the runner's iteration and epoch (read from the message hub), so they
survive a resume without any state of their own.
"""
from dataclasses import dataclass
from typing import Optional

from mmengine.logging import MessageHub


@dataclass(frozen=True)
class Progress:
    iter: int
    epoch: int

    @classmethod
    def current(cls) -> 'Progress':
        hub = MessageHub.get_current_instance()
        return cls(iter=int(hub.get_info('iter', 0)), epoch=int(hub.get_info('epoch', 0)))

    def count(self, by_epoch: bool) -> int:
        return self.epoch if by_epoch else self.iter


@dataclass(frozen=True)
class TermSchedule:
    """``schedule=dict(warmup=0, stop=None, by_epoch=False)`` of a term.

    The weight rises linearly over the first ``warmup`` iterations (epochs): (i + 1) / warmup,
    then stays at 1; from ``stop`` on the term is off and, if no other term is on, the teacher is
    not run at all.
    """
    warmup: int = 0
    stop: Optional[int] = None
    by_epoch: bool = False

    def __post_init__(self) -> None:
        if self.warmup < 0 or (self.stop is not None and self.stop < 0):
            raise ValueError(f'schedule {self}: warmup and stop must be >= 0.')

    def factor(self, progress: Progress) -> float:
        step = progress.count(self.by_epoch)
        if self.stop is not None and step >= self.stop:
            return 0.0
        if step < self.warmup:
            return (step + 1) / self.warmup
        return 1.0


@dataclass(frozen=True)
class TwoStage:
    """``two_stage=dict(switch=N, by_epoch=False)``: FitNet/FSP/AB-style training.

    Before ``switch`` only the distillation terms of stage 1 train the student (the task loss is
    weighted 0, keeping every parameter in the graph for DDP); from ``switch`` on the task loss
    trains it, together with the terms marked ``stage=2`` (e.g. KD). A term with ``stage='both'``
    runs throughout.
    """
    switch: int
    by_epoch: bool = False

    def stage(self, progress: Progress) -> int:
        return 1 if progress.count(self.by_epoch) < self.switch else 2
