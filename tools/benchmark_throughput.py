"""Images/s of an ImageNet distillation step: mmkd's runner next to the loop a user would write instead.

    python tools/benchmark_throughput.py [--device cpu|cuda] [--cases kd_nst kd nst_poly]
        [--batches 64 128 256] [--paths runner loop compiled] [--steps 20] [--warmup 5]
        [--image 224] [--out FILE]

For each ImageNet config (random weights: the time does not depend on them) and batch size, on one
ready uint8 batch repeated in memory (no decoding; pinned, as the configs' loader pins):
  runner    tools/train.py's runner: the config through mmkd.cli (non-finite guard, distillation
            diagnostics, the config's optimizer, hooks and logger), its data loader replaced by
            the in-memory batches; bf16 AMP (AmpOptimWrapper) on CUDA;
  loop      the same student, teacher, taps (forward hooks), loss modules and optimizer in a plain
            PyTorch loop: normalise, autocast, forward, backward, step; nothing else;
  compiled  the runner with the config's ``compile=True`` (torch.compile of the train step).
Each timed window is synchronised at its two ends only, so no sync is added to the steps. img/s =
batch x steps / seconds; runner/loop is the ratio of step times (target <= 1.05). On CUDA: peak
memory, and the share of the bf16 peak (torch's FLOP counter on one loop step against a bf16
matrix product measured in the same run). The input pipeline alone is tools/benchmark_input.py.

On the CPU the default is batch 4 at 64x64, float32, so that the script runs in the test suite.
"""
import argparse
import os.path as osp
import platform
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader, Dataset

import mmkd  # noqa: F401
from mmkd.benchmark import classification_batch, count_flops, drop_weights, matmul_tflops, synchronize
from mmkd.cli import add_distill_diagnostics, add_nonfinite_guard, build_runner
from mmkd.distill.taps import TapsComplete
from mmkd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CASES = {
    'kd_nst': 'configs/imagenet/inception_bn_kd_nst_resnet101.py',
    'kd': 'configs/imagenet/inception_bn_kd_resnet101.py',
    'nst_poly': 'configs/imagenet/inception_bn_nst_poly_resnet101.py',
}
PATHS = ('runner', 'loop', 'compiled')
DEFAULTS = dict(cpu=dict(batches=[4], image=64, steps=3, warmup=2),
                cuda=dict(batches=[64, 128, 256], image=224, steps=20, warmup=5))


class RepeatedBatch(Dataset):
    """One collated batch, ``length`` times: a loader with batch_size=None hands it over as is."""

    def __init__(self, batch: dict, length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batch


class Clock(Hook):
    """Wall time of iterations warmup+1 .. the last, synchronised at the two ends only."""

    priority = 'LOWEST'

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.seconds = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter == self.warmup:
            synchronize(self.device)
            if self.device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(self.device)
            self.start = time.perf_counter()

    def after_train(self, runner) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


def pinned_batch(batch: int, image: int, device: torch.device) -> dict:
    data = classification_batch(dict(batch=batch, image=image), np.random.default_rng(0))
    inputs = torch.stack(data['inputs'])
    return dict(inputs=inputs.pin_memory() if device.type == 'cuda' else inputs, data_samples=data['data_samples'])


def case_config(config: str, device: torch.device) -> Config:
    cfg = Config.fromfile(osp.join(REPO, config))
    init_default_scope(cfg.get('default_scope', 'mmkd'))
    drop_weights(cfg.model)
    if device.type == 'cuda':
        cfg.optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', optimizer=cfg.optim_wrapper.optimizer)
    return cfg


def runner_seconds(config: str, batch: dict, device: torch.device, steps: int, warmup: int,
                   compiled: bool, work_dir: str) -> Dict[str, float]:
    """Seconds of ``steps`` training iterations through tools/train.py's runner."""
    cfg = case_config(config, device)
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=warmup + steps, val_interval=10 ** 9)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader', 'test_evaluator', 'test_cfg',
                'param_scheduler'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = cfg.default_hooks.sampler_seed = None   # no checkpoints; no sampler to seed
    cfg.log_processor = dict(by_epoch=False, window_size=cfg.default_hooks.logger.interval)
    cfg.train_dataloader.num_workers = 0     # replaced below; never built
    cfg.env_cfg.dist_cfg = dict(backend='nccl' if device.type == 'cuda' else 'gloo')
    if compiled:
        cfg.compile = True
    add_nonfinite_guard(cfg)
    add_distill_diagnostics(cfg)
    runner = build_runner(cfg)
    runner._train_dataloader = DataLoader(RepeatedBatch(batch, warmup + steps), batch_size=None,
                                          collate_fn=lambda data: data)
    clock = Clock(warmup, device)
    runner.register_hook(clock)
    runner.train()
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == 'cuda' else float('nan')
    del runner
    return dict(seconds=clock.seconds, peak_mib=peak)


class HandLoop:
    """The step a user would write: the student, the teacher (as far as its taps), the same terms."""

    def __init__(self, config: str, device: torch.device) -> None:
        cfg = case_config(config, device)
        distiller = MODELS.build(cfg.model).to(device)
        self.student, self.engine = distiller.student, distiller.engine
        for term in self.engine.terms:
            if term.connector is not None or term.inputs.labels or term.takes_input_gradients:
                raise ValueError(f'{config}: {term.describe()} needs a connector, labels or input gradients, '
                                 'which the hand-written loop does not write out.')
        self.teacher = self.engine.teacher.to(device).eval()
        self.device = device
        preprocessor = self.student.data_preprocessor
        self.mean, self.std = preprocessor.mean.to(device), preprocessor.std.to(device)
        optimizer = dict(cfg.optim_wrapper.optimizer)
        self.optimizer = build_optim_wrapper(self.student, dict(optimizer=optimizer)).optimizer
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda')

    def step(self, batch: dict) -> torch.Tensor:
        x = batch['inputs'].to(self.device, non_blocking=True).flip(1).float()   # BGR -> RGB
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        labels = torch.stack([s.gt_label for s in batch['data_samples']]).to(self.device, non_blocking=True)
        engine = self.engine
        engine.begin_student_forward('loss')
        with self.autocast:
            loss = F.cross_entropy(self.student(x, mode='tensor'), labels)
            engine.teacher_taps.reset()
            engine.teacher_taps.stop_when_complete = True
            with torch.no_grad():
                try:
                    if all(t.module.startswith('backbone.') for term in engine.terms for t in term.teacher):
                        self.teacher.backbone(x)
                    else:
                        self.teacher(x, mode='tensor')
                except TapsComplete:
                    pass
            for term in engine.terms:
                loss = loss + term.loss(*[engine.student_taps.get(t) for t in term.student],
                                        *[engine.teacher_taps.get(t) for t in term.teacher])
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def seconds(self, batch: dict, steps: int, warmup: int) -> Dict[str, float]:
        for _ in range(warmup):
            self.step(batch)
        synchronize(self.device)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step(batch)
        synchronize(self.device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(self.device) / 2 ** 20 if self.device.type == 'cuda' else float('nan')
        return dict(seconds=seconds, peak_mib=peak)


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cases', nargs='+', choices=list(CASES), default=list(CASES))
    parser.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS))
    parser.add_argument('--batches', nargs='+', type=int)
    parser.add_argument('--image', type=int)
    parser.add_argument('--steps', type=int)
    parser.add_argument('--warmup', type=int)
    parser.add_argument('--out', help='also write the Markdown table to this file')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    for key, value in DEFAULTS[device.type].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < 1 or args.warmup < 1:
        parser.error('--steps and --warmup: at least 1 (the first steps include cuDNN autotuning and compilation).')
    name = torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine())
    lines = [f'Device: {name}; torch {torch.__version__}' +
             (f' (CUDA {torch.version.cuda}), bf16 AMP' if cuda else f', {torch.get_num_threads()} threads, float32') +
             f'; {args.image}x{args.image} images; {args.steps} timed steps after {args.warmup} warm-up.',
             f'Command: `python tools/benchmark_throughput.py --device {args.device} --cases {" ".join(args.cases)} '
             f'--paths {" ".join(args.paths)} --batches {" ".join(map(str, args.batches))} --image {args.image} '
             f'--steps {args.steps} --warmup {args.warmup}`.', '']
    peak_tflops = matmul_tflops(device) if cuda else None
    if cuda:
        lines += [f'bf16 8192^3 matrix product in this run: {peak_tflops:.0f} TFLOP/s.', '']
    header = ('| case | batch | ' + ' | '.join(f'{p} img/s' for p in args.paths) +
              (' | runner / loop step time' if {'runner', 'loop'} <= set(args.paths) else '') +
              (' | peak MiB (runner) | % of bf16 peak (runner)' if cuda else '') + ' |')
    lines += [header, '|' + '---|' * (header.count('|') - 1)]
    print('\n'.join(lines), flush=True)
    MMLogger.get_instance('mmengine', log_level='WARNING')
    for key in args.cases:
        for batch_size in args.batches:
            batch = pinned_batch(batch_size, args.image, device)
            results = {}
            for path in args.paths:
                if path == 'loop':
                    results[path] = HandLoop(CASES[key], device).seconds(batch, args.steps, args.warmup)
                else:
                    with tempfile.TemporaryDirectory() as work_dir:
                        results[path] = runner_seconds(CASES[key], batch, device, args.steps, args.warmup,
                                                       path == 'compiled', work_dir)
                if cuda:
                    torch.cuda.empty_cache()
            rate = {p: batch_size * args.steps / r['seconds'] for p, r in results.items()}
            row = f'| {key} | {batch_size} | ' + ' | '.join(f'{rate[p]:.1f}' for p in args.paths)
            if {'runner', 'loop'} <= set(args.paths):
                row += f' | {results["runner"]["seconds"] / results["loop"]["seconds"]:.3f}'
            if cuda:
                loop = HandLoop(CASES[key], device)
                flops = count_flops(lambda: loop.step(batch))
                del loop
                runner = results.get('runner') or next(iter(results.values()))
                achieved = flops * args.steps / runner['seconds'] / 1e12
                row += f' | {runner["peak_mib"]:.0f} | {achieved / peak_tflops:.1%}'
            row += ' |'
            lines.append(row)
            print(row, flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main(sys.argv[1:])
