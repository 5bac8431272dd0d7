"""Multi-process training without GPUs (gloo), which mmengine 0.10.7's launcher cannot start.

mmengine's ``init_dist('pytorch')`` and ``init_dist('slurm')`` call ``torch.cuda.set_device``
unconditionally, and its default model wrapper passes ``device_ids=[LOCAL_RANK]``, which
DistributedDataParallel rejects for CPU modules. On a machine without CUDA we start the gloo process
group ourselves (the runner then skips its own initialisation) and wrap without device ids.
"""
import os
import subprocess
from datetime import timedelta

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log


def slurm_rendezvous(port=None) -> None:
    """torch's rendezvous variables from Slurm's, as mmengine's slurm launcher sets them: rank =
    SLURM_PROCID, world = SLURM_NTASKS, the first node of SLURM_NODELIST at MASTER_PORT (``port``,
    else the environment's, else 29500); MASTER_ADDR from the environment wins."""
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.run(['scontrol', 'show', 'hostnames', nodes], check=True,
                                                   capture_output=True, text=True).stdout.split()[0]
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def prepare_cpu_distributed(cfg: Config) -> None:
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available() or dist.is_initialized():
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    if launcher == 'slurm':
        slurm_rendezvous(dist_cfg.get('port'))
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
