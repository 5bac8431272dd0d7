"""Measurement helpers shared by the benchmark tools (tools/benchmark_*.py): wall-clock time of
device work, the peak memory of one call, FLOPs and the bf16 matmul rate, and the random-weight
models and batches they measure."""
import gc
import statistics
import time
from typing import Callable

import numpy as np
import torch
from mmengine.structures import BaseDataElement


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


def drop_weights(cfg) -> None:
    """No checkpoints: random teacher and student weights (init_cfg may name a download)."""
    if isinstance(cfg, dict):
        for key in ('init_cfg', 'checkpoint'):
            cfg.pop(key, None)
        for value in cfg.values():
            drop_weights(value)
    elif isinstance(cfg, list):
        for value in cfg:
            drop_weights(value)


def classification_batch(size: dict, rng) -> dict:
    """``size['batch']`` random uint8 images of side ``size['image']`` with ImageNet labels, uncollated."""
    n, s = size['batch'], size['image']
    return dict(inputs=[torch.from_numpy(rng.integers(0, 256, (3, s, s), dtype=np.uint8)) for _ in range(n)],
                data_samples=[BaseDataElement(gt_label=torch.tensor(int(rng.integers(0, 1000))))
                              for _ in range(n)])


def count_flops(fn: Callable) -> int:
    """The FLOPs of one call (torch's FLOP counter: matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def matmul_tflops(device) -> float:
    """TFLOP/s of an 8192^3 bf16 matrix product on this device: the peak the steps are compared with."""
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    ms = statistics.median(timed_ms(lambda: a @ b, device) for _ in range(10))
    return 2 * 8192**3 / ms / 1e9
