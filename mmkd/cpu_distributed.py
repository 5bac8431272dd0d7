"""Multi-process training without GPUs (gloo), which mmengine 0.10.7's launcher cannot start.

mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` unconditionally, and its default
model wrapper passes ``device_ids=[LOCAL_RANK]``, which DistributedDataParallel rejects for CPU
modules. On a machine without CUDA we start the gloo process group ourselves (the runner then
skips its own initialisation) and wrap without device ids.
"""
from datetime import timedelta

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log


def prepare_cpu_distributed(cfg: Config) -> None:
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available() or dist.is_initialized():
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    backend = dist_cfg.get('backend', 'gloo')
    if backend != 'gloo':
        print_log(f"no CUDA device: using the gloo backend instead of '{backend}'.", logger='current', level=30)
    # env_cfg.dist_cfg.timeout is in seconds, as mmengine's init_dist reads it.
    timeout = dist_cfg.get('timeout')
    dist.init_process_group(backend='gloo',
                            **({} if timeout is None else dict(timeout=timedelta(seconds=timeout))))
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False)
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper.setdefault('device_ids', None)  # the runner's default [LOCAL_RANK] is for GPUs
    cfg.model_wrapper_cfg = wrapper
