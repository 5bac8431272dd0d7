"""Runner-level safety that any model gets from mmkd's tools/train.py."""
from .nonfinite_guard import NonFiniteError, NonFiniteGuardHook

__all__ = ['NonFiniteError', 'NonFiniteGuardHook']
