"""Runner-level hooks: safety that any model gets from mmkd's tools/train.py, and per-iteration seeding."""
from .iteration_seed import IterationSeedHook
from .nonfinite_guard import NonFiniteError, NonFiniteGuardHook

__all__ = ['IterationSeedHook', 'NonFiniteError', 'NonFiniteGuardHook']
