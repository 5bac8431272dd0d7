"""Process groups mmengine 0.10.7's launcher cannot start: without GPUs (gloo), and after a torchrun restart.

mmengine's ``init_dist('pytorch')`` and ``init_dist('slurm')`` call ``torch.cuda.set_device``
unconditionally, and its default model wrapper passes ``device_ids=[LOCAL_RANK]``, which
DistributedDataParallel rejects for CPU modules. On a machine without CUDA we start the gloo process
group ourselves (the runner then skips its own initialisation) and wrap without device ids.

torchrun's restarts (``--max-restarts``) keep the agent's store, and with it the keys of the attempt
before: a relaunched rank can read a stopped rank's listening address (gloo then fails with
"Connection refused") before the new rank has replaced it (reproduced with torch 2.14 and a bare
script whose ranks start a second apart). Under torchrun the group is therefore started on that
store with a key prefix of its own per attempt (``TORCHELASTIC_RESTART_COUNT``).
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


def attempt_store(timeout: timedelta):
    """Under torchrun (its agent serves the store at MASTER_ADDR:MASTER_PORT), that store with the
    prefix of this attempt; None elsewhere (Slurm, a store of the user's)."""
    if os.environ.get('TORCHELASTIC_USE_AGENT_STORE') != 'True':
        return None
    store = dist.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), int(os.environ['WORLD_SIZE']),
                          is_master=False, timeout=timeout)
    return dist.PrefixStore(f'mmkd/attempt_{os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")}', store)


def init_process_group(backend: str, dist_cfg: dict) -> None:
    # env_cfg.dist_cfg.timeout is in seconds, as mmengine's init_dist reads it.
    seconds = dist_cfg.get('timeout')
    timeout = timedelta(minutes=30) if seconds is None else timedelta(seconds=seconds)
    store = attempt_store(timeout)
    if store is None:
        dist.init_process_group(backend=backend, timeout=timeout)
    else:
        dist.init_process_group(backend=backend, store=store, rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']), timeout=timeout)


def prepare_cpu_distributed(cfg: Config) -> None:
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('pytorch', 'slurm') or dist.is_initialized():
        return
    if torch.cuda.is_available():
        if (launcher == 'pytorch' and os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == 'True'
                and int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') or 0) > 0):
            # A relaunch: mmengine's init_dist('pytorch'), on the store prefixed for this attempt (see
            # the module's doc); a first launch is left to mmengine (its keys carry no prefix).
            dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
            torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
            init_process_group(dist_cfg.get('backend', 'nccl'), dist_cfg)
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    if launcher == 'slurm':
        slurm_rendezvous(dist_cfg.get('port'))
    backend = dist_cfg.get('backend', 'gloo')
    if backend != 'gloo':
        print_log(f"no CUDA device: using the gloo backend instead of '{backend}'.", logger='current', level=30)
    init_process_group('gloo', dist_cfg)
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False)
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper.setdefault('device_ids', None)  # the runner's default [LOCAL_RANK] is for GPUs
    cfg.model_wrapper_cfg = wrapper
