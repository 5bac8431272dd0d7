"""Let torch's ``weights_only=True`` loader (the default since torch 2.6) read mmengine checkpoints.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, so resuming from its own checkpoints
fails with ``UnpicklingError``: they carry the message hub's ``HistoryBuffer`` objects, numpy
arrays, dtypes and scalars. Rather than turning the safe loader off, we allow-list exactly those
types. Anything else in a checkpoint is still refused.

``HistoryBuffer.__getstate__`` stores its statistic methods (``HistoryBuffer.min``, ...). Pickle
protocol 2, torch's default, writes such a nested function as ``getattr(HistoryBuffer, 'min')``:
the global ``builtins.getattr``. Allow-listing ``getattr`` itself would let a checkpoint reach any
attribute of any allowed object, so that name is bound to :func:`history_buffer_statistic`, which
resolves only HistoryBuffer's built-in statistics.
"""
import pickle
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` in the safe unpickler: HistoryBuffer statistics only."""
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); mmkd allows getattr only for '
        f'HistoryBuffer.{{{", ".join(HISTORY_BUFFER_STATISTICS)}}}. Load untrusted files with care.')


def numpy_pickle_globals() -> Dict[str, Any]:
    """Full name -> object for what pickled numpy arrays, dtypes and scalars refer to."""
    core = np._core if hasattr(np, '_core') else np.core
    names: Dict[str, Any] = {}
    # Pickles written under numpy 1 name numpy.core, under numpy 2 numpy._core; protocol 5 pickles
    # rebuild arrays through numeric._frombuffer.
    for package in ('numpy.core', 'numpy._core'):
        names[f'{package}.multiarray._reconstruct'] = core.multiarray._reconstruct
        names[f'{package}.multiarray.scalar'] = core.multiarray.scalar
        names[f'{package}.numeric._frombuffer'] = core.numeric._frombuffer
    dtype_classes = [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                                  np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                                                  np.float64, np.str_)]
    for cls in (np.ndarray, np.dtype, *dtype_classes):
        names[f'{cls.__module__}.{cls.__qualname__}'] = cls
    return names


def mmengine_checkpoint_globals() -> List[Tuple[Any, str]]:
    return [(HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
            (history_buffer_statistic, 'builtins.getattr'),
            *((obj, name) for name, obj in numpy_pickle_globals().items())]


def allow_mmengine_checkpoints() -> None:
    """Allow-list, in torch's process-wide ``weights_only`` loader, the types of mmengine's checkpoints
    (and nothing else). Idempotent. Made by ``tools/train.py``, ``tools/test.py`` (through
    :func:`mmkd.cli.build_runner`), ``tools/extract_student.py``, and by ``mmkd.Distiller`` /
    ``mmkd.DistillationHook`` when the runner builds them (before it resumes or loads the teacher);
    a script that loads mmengine checkpoints otherwise calls ``mmkd.allow_mmengine_checkpoints()``."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
