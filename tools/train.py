"""Train a detector or a (distilled) classifier from a config, as mmdet's tools/train.py does.

    python tools/train.py CONFIG [--work-dir DIR] [--seed N] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    python tools/train_seeds.py CONFIG --seeds 0 1 2 [...]   # one run per seed, finished ones skipped
    bash tools/dist_train.sh CONFIG GPUS [...]        # torchrun, one process per GPU

SIGTERM, SIGUSR1 or SIGINT stop a run after the iteration in progress with a checkpoint of it; it then
exits with 75 (mmkd.engine.STOPPED_EXIT_CODE) after logging the command that continues it. Under Slurm
with MMKD_REQUEUE=1 (tools/slurm_train.sh --requeue sets it) rank 0 first requeues the job, which
resumes from its work dir.
"""
import logging
import os
import subprocess
import sys

from mmengine.config import Config
from mmengine.logging import print_log

import mmkd  # noqa: F401  (registers mmkd's modules)
from mmkd.cli import (add_distill_diagnostics, add_nonfinite_guard, add_stop_safety, apply_seed, build_runner,
                      choose_resume, continue_command, load_config, peer_loss_explained, teardown_distributed,
                      train_parser)
from mmkd.engine import STOPPED_EXIT_CODE, TrainingStopped


def enable_amp(cfg: Config) -> None:
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper == 'AmpOptimWrapper':
        return
    if optim_wrapper != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, got {optim_wrapper}.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def main() -> int:
    args = train_parser().parse_args()
    cfg = load_config(args)
    if args.seed is not None:
        apply_seed(cfg, args.seed)
        print_log(f'seed {args.seed}: work dir {cfg.work_dir}', logger='current')
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=...) in the config.')
        cfg.auto_scale_lr.enable = True
    choose_resume(cfg, args.resume)
    add_nonfinite_guard(cfg)
    add_stop_safety(cfg)
    add_distill_diagnostics(cfg)
    runner = build_runner(cfg)
    code = 0
    try:
        with peer_loss_explained(runner):
            runner.train()
    except TrainingStopped as stop:
        stopped(stop, cfg.launcher, runner.rank)
        code = STOPPED_EXIT_CODE
    del runner
    teardown_distributed()
    return code


def stopped(stop: TrainingStopped, launcher: str, rank: int) -> None:
    """Log where the run stopped and how it continues; requeue a Slurm job that asked for it."""
    print_log(f'{stop.signal_name}: stopped after iteration {stop.iteration}, whole; checkpoint '
              f'{stop.checkpoint or "none (the run has no CheckpointHook)"}. Continue with: '
              f'{continue_command(sys.argv, launcher)}', logger='current', level=logging.WARNING)
    job = os.environ.get('SLURM_JOB_ID')
    if rank == 0 and job and os.environ.get('MMKD_REQUEUE') == '1':
        done = subprocess.run(['scontrol', 'requeue', job], capture_output=True, text=True)
        print_log(f'Slurm job {job} requeued: it resumes from its work dir.' if done.returncode == 0 else
                  f'scontrol requeue {job} failed ({done.stderr.strip()}): resume it by hand.',
                  logger='current', level=logging.WARNING)


if __name__ == '__main__':
    sys.exit(main())
