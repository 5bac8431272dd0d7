"""Train a detector or a (distilled) classifier from a config, as mmdet's tools/train.py does.

    python tools/train.py CONFIG [--work-dir DIR] [--seed N] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    python tools/train_seeds.py CONFIG --seeds 0 1 2 [...]   # one run per seed, finished ones skipped
    bash tools/dist_train.sh CONFIG GPUS [...]        # torchrun, one process per GPU
"""
import os.path as osp

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint

import mmkd  # noqa: F401  (registers mmkd's modules)
from mmkd.cli import (add_distill_diagnostics, add_nonfinite_guard, apply_seed, build_runner, load_config,
                      peer_loss_explained, teardown_distributed, train_parser)


def enable_amp(cfg: Config) -> None:
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper == 'AmpOptimWrapper':
        return
    if optim_wrapper != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, got {optim_wrapper}.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def main() -> None:
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
    if args.resume == 'auto':
        # mmengine would log "Auto resumed from the latest checkpoint None." when there is none.
        latest = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
        if latest is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir} yet: training from the start.',
                      logger='current')
        cfg.resume, cfg.load_from = latest is not None, latest
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume {args.resume}: no such checkpoint file.')
        cfg.resume, cfg.load_from = True, args.resume
    add_nonfinite_guard(cfg)
    add_distill_diagnostics(cfg)
    runner = build_runner(cfg)
    with peer_loss_explained(runner):
        runner.train()
    del runner
    teardown_distributed()


if __name__ == '__main__':
    main()
