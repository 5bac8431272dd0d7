"""Runner-level safety that any model gets from mmkd's tools/train.py (non-finite guard, stop at a
signal with a checkpoint, atomic checkpoint files, mid-epoch resume), and per-iteration seeding."""
from .checkpoint_files import AtomicLocalBackend, CheckpointWriteError, newest_intact_checkpoint
from .graceful_stop import (STOPPED_EXIT_CODE, GracefulStopHook, ResumableEpochBasedTrainLoop,
                            TrainingStopped)
from .iteration_seed import IterationSeedHook
from .nonfinite_guard import NonFiniteError, NonFiniteGuardHook

__all__ = ['AtomicLocalBackend', 'CheckpointWriteError', 'GracefulStopHook', 'IterationSeedHook', 'NonFiniteError',
           'NonFiniteGuardHook', 'ResumableEpochBasedTrainLoop', 'STOPPED_EXIT_CODE', 'TrainingStopped',
           'newest_intact_checkpoint']
