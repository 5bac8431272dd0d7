"""Checkpoint files that a kill, a power loss or a full disk cannot leave broken, and finding the
newest intact one to resume from.

mmengine writes a checkpoint straight to its final name (``LocalBackend.put``: ``open(path, 'wb')``),
so a process killed while writing leaves a truncated ``iter_N.pth`` that ``load_from``,
``tools/test.py`` or a user picking the newest file then trips on. ``AtomicLocalBackend`` writes to
a temporary file in the same directory, flushes and fsyncs it, renames it onto the final name (atomic
on POSIX file systems) and fsyncs the directory: the final name holds the old file or the whole new
one, never a part. ``tools/train.py`` makes it the checkpoint hook's backend (mmengine's
``CheckpointHook(backend_args=dict(backend='mmkd_atomic_local'))``); mmengine's CheckpointHook
updates ``last_checkpoint`` only after the save returns, so it never names a partial file.
"""
import contextlib
import errno
import glob
import math
import os
import os.path as osp
import re
import shutil
import tempfile
import zipfile
from typing import List, Optional, Union

from mmengine.fileio import LocalBackend, register_backend

ATOMIC_BACKEND = 'mmkd_atomic_local'
CHECKPOINT_NAME = re.compile(r'^(?:epoch_(?P<epoch>\d+)(?:_iter_(?P<epoch_iter>\d+))?|iter_(?P<iter>\d+))\.pth$')


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous one is untouched."""


def write_atomically(data: Union[bytes, str], path: str) -> None:
    """Write ``data`` to ``path`` so that ``path`` never holds a part of it (see the module's doc).

    A full disk (or quota) raises :class:`CheckpointWriteError` naming the path, the bytes needed and
    the bytes free; the temporary file is removed and whatever ``path`` held before is kept."""
    payload = data.encode('utf-8') if isinstance(data, str) else data
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(handle, 'wb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(folder).free
            raise CheckpointWriteError(
                error.errno, f'no space left to write {path}: it needs {len(payload):,} bytes, {free:,} are free '
                f'on that file system. The previous checkpoint is kept; free space (or move work_dir) and resume '
                'with --resume.') from error
        raise
    # The rename itself is durable only once the directory is written.
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, with :func:`write_atomically` for every write."""

    def put(self, obj: bytes, filepath) -> None:
        write_atomically(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        write_atomically(obj.encode(encoding), str(filepath))


def checkpoint_problem(path: str) -> Optional[str]:
    """Why the file at ``path`` is not a whole torch checkpoint (a zip archive, torch's format since
    1.6, every member's CRC checked), or None when it is."""
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'empty (0 bytes)'
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f'not a whole checkpoint ({osp.getsize(path):,} bytes; truncated or corrupt: {error})'
    if bad is not None:
        return f'corrupt: member {bad} fails its CRC check'
    return None


def checkpoint_step(path: str) -> Optional[tuple]:
    """Sort key of a checkpoint name mmengine and mmkd write (iter_N, epoch_N, epoch_N_iter_M)."""
    match = CHECKPOINT_NAME.match(osp.basename(path))
    if not match:
        return None
    if match['iter']:
        return int(match['iter']), 0
    # epoch_E_iter_N: stopped during epoch E, before its end, epoch_E.pth
    return int(match['epoch']), int(match['epoch_iter']) if match['epoch_iter'] else math.inf


def checkpoints_newest_first(work_dir: str) -> List[str]:
    """The checkpoints in ``work_dir`` and the one its ``last_checkpoint`` names (mmengine's pointer,
    which may lie in another ``out_dir``), newest step first."""
    found = {osp.abspath(p) for p in glob.glob(osp.join(work_dir, '*.pth')) if checkpoint_step(p) is not None}
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = open(pointer).read().strip() if osp.isfile(pointer) else ''
    if named and checkpoint_step(named) is not None and osp.isfile(named):
        found.add(osp.abspath(named))
    return sorted(found, key=lambda p: (checkpoint_step(p), osp.getmtime(p)), reverse=True)


def newest_intact_checkpoint(work_dir: str, exclude: Optional[str] = None) -> Optional[str]:
    """The newest whole checkpoint of ``work_dir`` other than ``exclude``, or None."""
    for path in checkpoints_newest_first(work_dir):
        if path != (osp.abspath(exclude) if exclude else None) and checkpoint_problem(path) is None:
            return path
    return None
