"""Measurement helpers shared by the benchmark tools (tools/benchmark_*.py): wall-clock time of
device work and the peak memory of one call, on the CPU or a CUDA device."""
import gc
import time
from typing import Callable

import torch


def rss_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: its high-water mark)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed_ms(fn: Callable[[], object], device: torch.device) -> float:
    """Milliseconds of ``fn()``, its queued device work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1000


def peak_mib(fn: Callable[[], object], device: torch.device) -> float:
    """The memory ``fn()`` takes at its peak beyond what was held before it: CUDA allocations, or
    on the CPU the rise of the resident set (run the process with ``MALLOC_MMAP_THRESHOLD_=65536``
    so that glibc returns large blocks at once and every call starts from the same state)."""
    gc.collect()
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    base = rss_kib('VmRSS')
    fn()
    return (rss_kib('VmHWM') - base) / 1024
