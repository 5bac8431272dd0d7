"""What a distillation step costs next to what it must cost: the student's step plus the teacher's forward.

    python tools/benchmark_distill.py [--device cpu|cuda] [--steps 10] [--cases kd nst_poly voc]
                                      [--out docs/benchmarks_distill.md]

For each case, in one interleaved run (a, b, c, then b, c, a, ...; median of --steps after warm-up):
  (a) the student's training step alone (data preprocessing, forward, backward, optimizer step),
  (b) the teacher's no-grad forward as the engine runs it (only as far as its deepest tap),
  (c) the distillation step (the Distiller's train_step, or the student's with DistillationHook),
  (d) the same step on an iteration that measures the terms' gradient shares (every
      grad_share.interval iterations, default 50; mmkd/distill/gradient_share.py).
The ratio (c) / ((a) + (b)) is what distillation adds beyond the teacher's forward (target 1.03);
(d) / (c) what a measuring iteration costs (one extra backward per term and one for the task).
Peak memory: each part's peak beyond what was held before it (CUDA allocations, or the rise of the
resident set on the CPU).

A second table runs the teacher in each precision the engine offers (fp32; bf16 autocast; bf16 +
channels_last) on the case's batch and gives its forward time and the relative change of every
term's loss value against the fp32 teacher (target <= 1 %).

Sizes: CPU batch 8 at 224 (detection: 2 images at 512x320); CUDA batch 64 at 224 (detection: 2 at
1000x600), the student under bf16 AMP (mmengine's AmpOptimWrapper), students and teachers
channels_last, plus the FLOP/s of (c) (torch's FLOP counter) against a bf16 matrix product measured
in the same run. Teachers have random weights (the time does not depend on them).
"""
import argparse
import os
import platform
import statistics
import sys
from typing import Callable, Dict

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmkd  # noqa: F401
from mmkd.benchmark import classification_batch, count_flops, drop_weights, matmul_tflops, peak_mib, timed_ms
from mmkd.distill import DistillationHook
from mmkd.registry import MODELS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    'kd': 'configs/imagenet/inception_bn_kd_resnet101.py',
    'at': 'configs/imagenet/inception_bn_at_resnet101.py',
    'fitnet': 'configs/imagenet/inception_bn_fitnet_resnet101.py',
    'nst_poly': 'configs/imagenet/inception_bn_nst_poly_resnet101.py',
    'kd_nst': 'configs/imagenet/inception_bn_kd_nst_resnet101.py',
    'voc': 'configs/voc/faster-rcnn_inception-bn-nst-poly_fpn_distill-r101_voc0712.py',
}
SIZES = dict(cpu=dict(batch=8, image=224, det_batch=2, det_hw=(320, 512)),
             cuda=dict(batch=64, image=224, det_batch=2, det_hw=(600, 1000)))
PRECISIONS = [('fp32', False), ('bf16', False), ('bf16', True)]


class _Runner:
    """What DistillationHook.before_run reads of mmengine's runner."""

    def __init__(self, model):
        self.model = model


def detection_batch(size: dict, rng) -> dict:
    from mmdet.structures import DetDataSample
    h, w = size['det_hw']
    samples = []
    for _ in range(size['det_batch']):
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                             scale_factor=(1.0, 1.0)))
        corners = rng.uniform(0, [w * 0.6, h * 0.6], (4, 2))
        sizes = rng.uniform(32, [w * 0.4, h * 0.4], (4, 2))
        sample.gt_instances = InstanceData(
            bboxes=torch.from_numpy(np.concatenate([corners, corners + sizes], 1)).float(),
            labels=torch.from_numpy(rng.integers(0, 20, 4)))
        samples.append(sample)
    return dict(inputs=[torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8))
                        for _ in samples], data_samples=samples)


class Case:
    """The student alone, the distilling model and its engine, built from one config."""

    def __init__(self, name: str, config: str, device: torch.device, amp: bool, channels_last: bool,
                 size: dict):
        cfg = Config.fromfile(os.path.join(REPO, config))
        init_default_scope(cfg.get('default_scope', 'mmkd'))
        drop_weights(cfg.model)
        hooks = [h for h in cfg.get('custom_hooks', []) if 'DistillationHook' in h['type']]
        self.name, self.config, self.device = name, config, device
        self.detection = bool(hooks)
        if self.detection:  # an unmodified detector config + mmkd.DistillationHook
            student_cfg = cfg.model
            self.model = MODELS.build(student_cfg)
            teacher = dict(hooks[0]['teacher'])
            drop_weights(teacher)
            hook = DistillationHook(teacher=teacher, distill=hooks[0]['distill'])
            hook.before_run(_Runner(self.model))
            self.engine = hook.engine
        else:                # mmkd.Distiller
            student_cfg = dict(cfg.model.student)
            if cfg.model.get('data_preprocessor'):
                student_cfg.setdefault('data_preprocessor', cfg.model.data_preprocessor)
            self.model = MODELS.build(cfg.model)
            self.engine = self.model.engine
        self.student = MODELS.build(student_cfg)
        for model in (self.model, self.student):
            model.to(device)
            if channels_last:
                model.to(memory_format=torch.channels_last)
        self.engine.teacher.to(device)
        if channels_last:
            self.engine.teacher.to(memory_format=torch.channels_last)
        optim = dict(cfg.optim_wrapper)
        if amp:
            optim.update(type='AmpOptimWrapper', dtype='bfloat16')
        self.student_optim = build_optim_wrapper(self.student, optim)
        self.optim = build_optim_wrapper(self.model, optim)
        rng = np.random.default_rng(0)
        self.batch = (detection_batch if self.detection else classification_batch)(size, rng)
        self.model.train()
        self.student.train()

    def student_step(self):
        self.student.train_step(self.batch, self.student_optim)

    def distill_step(self, measure_shares: bool = False):
        # Every step of the benchmark is iteration 0 of the message hub: choose explicitly.
        self.engine.grad_share_interval = 1 if measure_shares else None
        self.model.train_step(self.batch, self.optim)

    def preprocessed(self) -> dict:
        return self.model.data_preprocessor(self.batch, True)

    def teacher_forward(self, data: dict):
        with self.optim.optim_context(self.model):
            self.engine.run_teacher(data['inputs'], data['data_samples'])

    def term_values(self, data: dict) -> Dict[str, float]:
        """Each term's loss on this batch, with the teacher in the engine's current precision."""
        engine = self.engine
        with torch.no_grad():
            engine.begin_student_forward('loss')
            if self.detection:  # the backbone and neck hold the taps; the hook watches forward()
                self.model.extract_feat(data['inputs'])
            else:
                self.model.student(data['inputs'], data['data_samples'], mode='tensor')
            engine.run_teacher(data['inputs'], data['data_samples'])
            values = {t.name: float(engine.term_loss(t)) for t in engine.terms if not t.takes_input_gradients}
        engine.student_taps.reset()
        engine.teacher_taps.reset()
        return values


def interleaved(parts: Dict[str, Callable], device, warmup: int, steps: int) -> Dict[str, float]:
    names = list(parts)
    for _ in range(warmup):
        for name in names:
            parts[name]()
    times = {name: [] for name in names}
    for step in range(steps):
        for name in names[step % len(names):] + names[:step % len(names)]:
            times[name].append(timed_ms(parts[name], device))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--cases', nargs='+', choices=list(CASES), default=list(CASES))
    parser.add_argument('--out', help='also write the Markdown tables to this file')
    parser.add_argument('--batch', type=int, help='classification batch (default: the table size of the device)')
    parser.add_argument('--image', type=int, help='classification image side (default: 224)')
    args = parser.parse_args()
    if args.device == 'cpu' and os.environ.get('MALLOC_MMAP_THRESHOLD_') is None:
        os.environ['MALLOC_MMAP_THRESHOLD_'] = '65536'  # must be set before the process starts
        os.execv(sys.executable, [sys.executable, *sys.argv])
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    size = dict(SIZES[device.type])
    size.update({key: getattr(args, key) for key in ('batch', 'image') if getattr(args, key)})
    name = torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine())
    header = [
        f'Device: {name}; torch {torch.__version__}' + (f' (CUDA {torch.version.cuda})' if cuda else
                                                       f', {torch.get_num_threads()} threads') + '.',
        f'Classification batch {size["batch"]} at {size["image"]}x{size["image"]}; detection '
        f'{size["det_batch"]} images at {size["det_hw"][1]}x{size["det_hw"][0]}; ' +
        ('bf16 AMP, channels_last; ' if cuda else 'float32; ') +
        f'median of {args.steps} interleaved steps after {args.warmup} warm-up.',
        f'Command: `python tools/benchmark_distill.py --device {args.device}`.', '']
    if cuda:
        rate = matmul_tflops(device)
        header += [f'bf16 8192^3 matrix product in this run: {rate:.0f} TFLOP/s.', '']
    step_rows = ['| case | (a) student step ms | (b) teacher fwd ms | (c) distill step ms | (c)/((a)+(b)) | '
                 'peak MiB (a) / (b) / (c) | (d) measuring step ms | (d)/(c) |' +
                 (' (c) TFLOP/s | of bf16 peak |' if cuda else ''),
                 '|---|---:|---:|---:|---:|---:|---:|---:|' + ('---:|---:|' if cuda else '')]
    precision_rows = ['| case | fp32 teacher ms | bf16 ms | bf16 + channels_last ms | speed-up | '
                      'largest change of a term (bf16 + CL vs fp32) |', '|---|---:|---:|---:|---:|---|']
    print('\n'.join(header + step_rows), flush=True)
    for key in args.cases:
        case = Case(key, CASES[key], device, amp=cuda, channels_last=cuda, size=size)
        # Loss values first: the timed steps train the random student, which can diverge.
        precision_rows.append(precision_row(case, device, args))
        data = case.preprocessed()
        parts = dict(a=case.student_step, b=lambda: case.teacher_forward(data), c=case.distill_step,
                     d=lambda: case.distill_step(measure_shares=True))
        ms = interleaved(parts, device, args.warmup, args.steps)
        mib = {part: peak_mib(parts[part], device) for part in 'abc'}
        row = (f'| {key} (`{os.path.basename(case.config)}`) | {ms["a"]:.1f} | {ms["b"]:.1f} | {ms["c"]:.1f} | '
               f'{ms["c"] / (ms["a"] + ms["b"]):.3f} | {mib["a"]:.0f} / {mib["b"]:.0f} / {mib["c"]:.0f} | '
               f'{ms["d"]:.1f} | {ms["d"] / ms["c"]:.2f} |')
        if cuda:
            achieved = count_flops(case.distill_step) / ms['c'] / 1e9
            row += f' {achieved:.0f} | {achieved / rate:.1%} |'
        step_rows.append(row)
        print(row, flush=True)
        del case, data, parts
        if cuda:
            torch.cuda.empty_cache()
    text = header + ['### Distillation step', ''] + step_rows + ['', '### Teacher precision', ''] + precision_rows
    print('\n'.join(['', '### Teacher precision', ''] + precision_rows), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(text) + '\n')


def precision_row(case: Case, device, args) -> str:
    """The teacher alone in fp32, bf16 and bf16 + channels_last, outside the student's autocast."""
    engine = case.engine
    data = case.preprocessed()
    teacher = engine.teacher
    saved = engine.teacher_precision, engine.teacher_channels_last
    results, values = {}, {}
    for precision, channels_last in PRECISIONS:
        engine.teacher_precision, engine.teacher_channels_last = precision, channels_last
        teacher.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        label = precision + (' + CL' if channels_last else '')
        results[label] = interleaved({label: lambda: engine.run_teacher(data['inputs'], data['data_samples'])},
                                     device, args.warmup, args.steps)[label]
        values[label] = case.term_values(data)
    engine.teacher_precision, engine.teacher_channels_last = saved
    reference = values['fp32']
    change = max(((abs(values['bf16 + CL'][t] - v) / max(abs(v), 1e-12), t) for t, v in reference.items()),
                 default=(0.0, '-'))
    return (f'| {case.name} | {results["fp32"]:.1f} | {results["bf16"]:.1f} | {results["bf16 + CL"]:.1f} | '
            f'{results["fp32"] / results["bf16 + CL"]:.2f}x | {change[0]:.2%} ({change[1]}) |')


if __name__ == '__main__':
    main()
