"""The whole mission on small real data, on a CPU: distillation pretraining -> Faster R-CNN -> VOC07 mAP,
over several seeds, with error bars.

    python tools/demo.py [--seeds 3] [--methods kd nst_poly kd_nst] [--jobs 2] [--redo] [--device cpu|cuda]

1. data: scikit-learn's handwritten digits as an ImageNet-layout classification set (with a labelled
   subset of 20 digits per class for the students) and a VOCdevkit detection set (tools/demo_data.py;
   cached in data/demo/);
2. a teacher (ResNet-18 x0.5, trained once on every training digit) and students (Inception-BN x0.25)
   on the labelled subset: alone and distilled (by default KD and NST-poly; KD+NST, AT, FitNet on
   request), each trained with tools/train.py --seed N for every seed, validated along the way;
3. a Faster R-CNN on each student backbone (same seed: same head initialisation, data order and, through
   mmkd.IterationSeedHook, the same sampling draws at each iteration), scored with VOC07 11-point mAP
   and its bootstrap interval over the test images;
4. work_dirs/demo/results.md: per method mean ± std over seeds and the difference to the student
   alone paired by seed with its 95 % interval (mmkd/statistics.py), the evaluation's own interval,
   where each curve plateaus, each term's last gradient share; map.png (means, std bars, every seed),
   convergence.png (top-1 and mAP against iterations, mean over seeds with a min-max band),
   loss_curves.png and grad_shares.png, attention.png.

Runs go through the configs in configs/demo/, --jobs at a time (2 on a 2-core CPU, one thread each:
two small jobs side by side train at almost twice the rate of one on both cores); a finished run
(its result.json) is reused unless --redo. Whatever numbers come out are the numbers reported.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Dict, List, Optional

from mmkd import allow_mmengine_checkpoints
from mmkd.datasets.demo_data import make_demo_data
from mmkd.results import (bar_chart, compare_methods, format_diff, format_value, latest_metrics, markdown_comparison,
                          read_runs)
from mmkd.statistics import summarize

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

METHODS = ('baseline', 'kd', 'nst_poly', 'kd_nst', 'at', 'fitnet', 'kd_nst_auto')
DEFAULT_METHODS = METHODS[:3]
LABELS = dict(baseline='student alone', kd='KD', at='AT', fitnet='FitNet', nst_poly='NST (poly)', kd_nst='KD+NST',
              kd_nst_auto='KD+NST, auto weights')
CONFIGS = osp.join(REPO, 'configs', 'demo')
DETECTOR = osp.join(CONFIGS, 'digits_faster-rcnn_inception-bn_fpn.py')
TEACHER_SEED = 0

# Iterations and sizes. 'full' is `make demo`; 'quick' checks the pipeline end to end in the tests.
# Every schedule ends at learning rate 0 (warm-up, then cosine) and is long enough that its metric has
# stopped rising (convergence.png shows the curves): the students learn from 20 labelled digits per
# class (the teacher from all 1,200), so that the student alone stays far from the ceiling. Each run is
# validated `points` times for the curves; 300 detection test images make the bootstrap interval
# of one run's mAP (the evaluation's own uncertainty) narrower than the differences looked for; 500
# resamples put about 12 in each 2.5 % tail. Detectors are validated 4 times (10 s each), students 8.
# Default methods, what fits 3 seeds in 30 min: the student alone, KD (logits) and NST (the NST paper's
# feature term); KD+NST, AT, FitNet and calibrated KD+NST on request (--methods).
PROFILES = {
    'full': dict(teacher=dict(iters=800, batch=64, points=8, warmup=20),
                 student=dict(iters=400, batch=32, points=8, warmup=20),
                 detector=dict(iters=1200, batch=2, points=4, warmup=50), bootstrap=500,
                 data=dict(det_trainval=300, det_test=300, cls_train=0, labelled_per_class=20)),
    'quick': dict(teacher=dict(iters=3, batch=8, points=1, warmup=1), student=dict(iters=3, batch=8, points=1, warmup=1),
                  detector=dict(iters=3, batch=2, points=3, warmup=1), bootstrap=50,
                  data=dict(det_trainval=6, det_test=4, cls_train=60, labelled_per_class=2)),
}


# The runs repeat exactly on one machine, but float sums depend on the CPU's vector kernels and the
# thread count: on the development machine (AVX-512), forcing AVX2 kernels or one thread changed the
# teacher's loss within 40 iterations. So the demo pins the kernels (x86-64) and gives each of its
# --jobs parallel runs cores // jobs threads, unless the caller sets them.
PINNED_KERNELS = dict(ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2', MKL_CBWR='AVX2') \
    if platform.machine() in ('x86_64', 'AMD64') else {}


class Demo:

    def __init__(self, work_dir: str, data_dir: str, profile: dict, redo: bool, device: str, jobs: int) -> None:
        self.work_dir = work_dir
        self.data_dir = data_dir
        self.profile = profile
        self.redo = redo
        self.start = time.time()
        self.done = 0
        self.total_steps = 0
        self.lock = threading.Lock()
        threads = str(max(1, (os.cpu_count() or 1) // jobs))
        self.env = ({**PINNED_KERNELS, 'OMP_NUM_THREADS': threads, 'CUDA_VISIBLE_DEVICES': ''} if device == 'cpu'
                    else {})

    def say(self, message: str) -> None:
        elapsed = time.time() - self.start
        with self.lock:
            print(f'[{elapsed / 60:5.1f} min] {message}', flush=True)

    def tool(self, name: str, args: List[str], log: str) -> None:
        """Run tools/<name>.py as a user would, its output into log; fail loudly with its tail."""
        with open(log, 'w') as f:
            proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', f'{name}.py'), *args], cwd=REPO,
                                  stdout=f, stderr=subprocess.STDOUT,
                                  env={**self.env, **os.environ, 'PYTHONUNBUFFERED': '1'})
        if proc.returncode != 0:
            with open(log) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f'tools/{name}.py failed (exit {proc.returncode}); end of {log}:\n{tail}')

    def run(self, name: str, seed: int, config: str, options: List[str], prefix: str) -> dict:
        """Train one config with --seed (validated at its last iteration); cached by result.json."""
        run_dir = osp.join(self.work_dir, f'{name}_seed{seed}')
        result_file = osp.join(run_dir, 'result.json')
        label = osp.basename(run_dir)
        if not self.redo and osp.isfile(result_file):
            result = json.load(open(result_file))
            self.count(f'{label}: reused ({summary(result)})')
            return result
        os.makedirs(run_dir, exist_ok=True)
        started = time.time()
        self.say(f'{label}: training {osp.basename(config)}')
        self.tool('train', [config, '--work-dir', osp.join(self.work_dir, name), '--seed', str(seed), '--cfg-options',
                            *options], osp.join(run_dir, 'train.log'))
        checkpoint = open(osp.join(run_dir, 'last_checkpoint')).read().strip()
        result = dict(latest_metrics(run_dir, prefix), checkpoint=checkpoint, seconds=round(time.time() - started))
        json.dump(result, open(result_file, 'w'), indent=1)
        self.count(f'{label}: done in {result["seconds"]} s ({summary(result)})')
        return result

    def count(self, message: str) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        self.say(f'({done}/{self.total_steps}) {message}')

    # ---------------------------------------------------------------- stages
    def common_options(self, stage: str) -> List[str]:
        # Data loading in the training process: with one thread per job, a loader worker would
        # compete for the job's core (measured: 0.29 s an iteration with one, 0.23 s without).
        iters, batch, points, warmup = (self.profile[stage][key] for key in ('iters', 'batch', 'points', 'warmup'))
        return [f'train_dataloader.batch_size={batch}', f'train_cfg.max_iters={iters}',
                f'train_cfg.val_interval={max(1, iters // points)}',
                # the configs' two phases: linear warm-up, then cosine to learning rate 0 at the last iteration
                f'param_scheduler.0.end={warmup}', f'param_scheduler.1.begin={warmup}', f'param_scheduler.1.end={iters}',
                'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
                f'default_hooks.checkpoint.interval={iters}', f'default_hooks.logger.interval={log_interval(iters)}']

    def classification_options(self, stage: str) -> List[str]:
        digits = osp.join(self.data_dir, 'digits')
        return [f'train_dataloader.dataset.data_root={digits}', f'val_dataloader.dataset.data_root={digits}',
                *self.common_options(stage)]

    def teacher(self) -> dict:
        config = osp.join(CONFIGS, 'digits_resnet18_teacher.py')
        return self.run('cls_teacher', TEACHER_SEED, config, self.classification_options('teacher'), 'accuracy/')

    def student(self, method: str, seed: int, teacher_checkpoint: Optional[str]) -> dict:
        config = osp.join(CONFIGS, f'digits_inception_bn_{method}.py')
        options = self.classification_options('student')
        if method != 'baseline':
            options += [f'model.teacher.checkpoint={teacher_checkpoint}',
                        f'model.grad_share.interval={log_interval(self.profile["student"]["iters"])}']
        return self.run(f'cls_{method}', seed, config, options, 'accuracy/')

    def detector(self, method: str, seed: int, student: dict) -> dict:
        voc = osp.join(self.data_dir, 'VOCdevkit') + '/'
        # A Distiller checkpoint keeps the student under student.*: the detector loads its backbone there.
        prefix = 'backbone.' if method == 'baseline' else 'student.backbone.'
        options = [f'train_dataloader.dataset.data_root={voc}', f'val_dataloader.dataset.data_root={voc}',
                   *self.common_options('detector'),
                   f'val_evaluator.bootstrap={self.profile["bootstrap"]}',
                   f'model.backbone.init_cfg.checkpoint={student["checkpoint"]}', f'model.backbone.init_cfg.prefix={prefix}']
        return self.run(f'det_{method}', seed, DETECTOR, options, 'pascal_voc/')


class Scheduler:
    """Runs jobs ``jobs`` at a time, each once the jobs it needs have finished, in submission order."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pending = []   # (name, needs, function)
        self.results: Dict[str, dict] = {}

    def add(self, name: str, needs: List[str], function) -> None:
        self.pending.append((name, needs, function))

    def run(self) -> Dict[str, dict]:
        running = {}
        with ThreadPoolExecutor(self.jobs) as pool:
            while self.pending or running:
                for job in list(self.pending):
                    name, needs, function = job
                    if len(running) < self.jobs and all(n in self.results for n in needs):
                        self.pending.remove(job)
                        running[pool.submit(function, *[self.results[n] for n in needs])] = name
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    self.results[running.pop(future)] = future.result()   # a failed run raises here
        return self.results


def log_interval(iters: int) -> int:
    return max(1, min(20, iters // 10))


def summary(result: dict) -> str:
    if 'top1' in result:
        return f'top-1 {result["top1"]:.1f}%'
    return f'VOC07 mAP {100 * result["mAP"]:.1f}%'


# -------------------------------------------------------------------- report
def run_dirs(work_dir: str, stage: str, method: str, seeds: List[int]) -> List[str]:
    return [osp.join(work_dir, f'{stage}_{method}_seed{seed}') for seed in seeds]


def comparison(work_dir: str, stage: str, methods: List[str], seeds: List[int]) -> List[dict]:
    """compare_methods over the runs of one stage ('cls' or 'det'): mean ± std, Δ vs the student alone."""
    dirs = [d for m in methods for d in run_dirs(work_dir, stage, m, seeds)]
    names = [LABELS[m] for m in methods for _ in seeds]
    return compare_methods(read_runs(dirs, names), baseline=LABELS['baseline'])


def evaluation_interval(rows: List[dict]) -> Optional[float]:
    """The mean half-width of the detectors' bootstrap intervals over the test images, in mAP points."""
    widths = [(ci[1] - ci[0]) / 2 for row in rows for ci in row['cis'] if ci is not None]
    return summarize(widths)['mean'] if widths else None


def results_table(teacher: dict, cls_rows: List[dict], det_rows: List[dict]) -> str:
    """Per method: top-1 and VOC07 mAP as mean ± std over the seeds, each with the difference to the
    student alone paired by seed and its 95 % interval (* where it excludes zero)."""
    lines = ['| method | student top-1 (%) | Δ top-1 | VOC07 mAP (%) | Δ mAP |', '|---|---:|---:|---:|---:|',
             f'| teacher (ResNet-18 x0.5, seed {TEACHER_SEED}) | {teacher["top1"]:.1f} | | — | |']
    for cls_row, det_row in zip(cls_rows, det_rows):
        lines.append(f'| {cls_row["method"]} | {format_value(cls_row)} | {format_diff(cls_row)} | '
                     f'{format_value(det_row)} | {format_diff(det_row)} |')
    return '\n'.join(lines) + '\n'


def half_width(row: dict) -> Optional[float]:
    return None if row.get('diff low') is None else (row['diff high'] - row['diff low']) / 2


def resolution(cls_rows: List[dict], det_rows: List[dict]) -> str:
    """What the demo can resolve: the student alone's spread over seeds and the widest paired intervals."""
    alone_det, alone_cls = det_rows[0], cls_rows[0]
    widths = {stage: [w for w in map(half_width, rows) if w is not None]
              for stage, rows in (('cls', cls_rows), ('det', det_rows))}
    if not widths['det']:
        return 'Resolution: one seed, or no method beside the student alone: no paired interval.\n'
    return (f'Resolution: the student alone\'s detector {alone_det["mAP"]:.1f} ± {alone_det["mAP std"]:.1f} mAP over '
            f'seeds (top-1 {alone_cls["top1"]:.1f} ± {alone_cls["top1 std"]:.1f} %); paired 95 % intervals '
            f'± {min(widths["det"]):.1f} to ± {max(widths["det"]):.1f} mAP points and ± {min(widths["cls"]):.1f} to '
            f'± {max(widths["cls"]):.1f} top-1 points wide.\n')


def convergence_table(plateaus: Dict[str, Dict[str, Optional[int]]], profile: dict) -> str:
    """Per method, where the mean curve over seeds comes within 1 point of its end (convergence.png)."""
    lines = [f'Each schedule ends at learning rate 0 (students {profile["student"]["iters"]} iterations, detectors '
             f'{profile["detector"]["iters"]}); from the iteration below the mean over seeds stays within 1 point '
             'of its last value.\n', '| method | top-1 from iteration | mAP from iteration |', '|---|---:|---:|']
    for method in plateaus['cls']:
        lines.append(f'| {LABELS[method]} | {plateaus["cls"][method]} | {plateaus["det"][method]} |')
    return '\n'.join(lines) + '\n'


def curve_band(ax, runs: List[List[tuple]], label: str) -> None:
    """The mean over runs of (x, y) curves at the x's all runs have, and the min-max band."""
    mean = mean_curve(runs)
    if not mean:
        return
    common = [x for x, _ in mean]
    values = [[dict(run)[x] for x in common] for run in runs]
    line, = ax.plot(common, [y for _, y in mean], label=label, marker='.' if len(common) < 20 else None)
    if len(runs) > 1:
        ax.fill_between(common, [min(v) for v in zip(*values)], [max(v) for v in zip(*values)], color=line.get_color(),
                        alpha=0.2, lw=0)


def scalar_records(run_dir: str) -> List[dict]:
    records = []
    for scalars in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))):
        records += [json.loads(line) for line in open(scalars) if line.strip()]
    return records


def loss_curves(work_dir: str, methods: List[str], seeds: List[int], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3), squeeze=False)
    for ax, method in zip(axes[0], methods):
        runs = [[r for r in scalar_records(d) if 'loss' in r and 'iter' in r]
                for d in run_dirs(work_dir, 'cls', method, seeds)]
        for key in sorted({k for run in runs for r in run for k in r if k.startswith('loss')}):
            curve_band(ax, [[(r['iter'], r[key]) for r in run if key in r] for run in runs], key)
        ax.set_title(f'{LABELS[method]} ({len(seeds)} seeds)')
        ax.set_xlabel('iteration')
        ax.set_yscale('log')
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# stage -> (the metric's log key, its factor to %, axis label)
CURVE_METRICS = dict(cls=('accuracy/top1', 1.0, 'student top-1 (%)'), det=('pascal_voc/mAP', 100.0, 'VOC07 mAP (%)'))


def metric_curve(run_dir: str, stage: str) -> List[tuple]:
    """(iteration, metric in %) at each validation of a run."""
    key, scale, _ = CURVE_METRICS[stage]
    return [(r['step'], scale * r[key]) for r in scalar_records(run_dir) if key in r]


def plateau_start(curve: List[tuple], tolerance: float = 1.0) -> Optional[int]:
    """The first iteration from which every later point of ``curve`` ((x, y) in x order) lies within
    ``tolerance`` of the last one: where the metric has stopped rising (or falling)."""
    if not curve:
        return None
    last = curve[-1][1]
    start = curve[-1][0]
    for x, y in reversed(curve):
        if abs(y - last) > tolerance:
            break
        start = x
    return start


def mean_curve(runs: List[List[tuple]]) -> List[tuple]:
    """The mean over runs at the iterations every run has."""
    common = sorted(set.intersection(*[{x for x, _ in run} for run in runs])) if runs else []
    return [(x, summarize([dict(run)[x] for run in runs])['mean']) for x in common]


def convergence(work_dir: str, methods: List[str], seeds: List[int]) -> Dict[str, Dict[str, Optional[int]]]:
    """stage -> method -> where the mean curve over seeds plateaus (within 1 point of its end)."""
    return {stage: {m: plateau_start(mean_curve([metric_curve(d, stage) for d in run_dirs(work_dir, stage, m, seeds)]))
                    for m in methods} for stage in CURVE_METRICS}


def convergence_figure(work_dir: str, methods: List[str], seeds: List[int], path: str) -> None:
    """Students' top-1 and detectors' mAP against iterations: per method the mean over seeds with the
    min-max band, and a marker where the mean stays within 1 point of its last value."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (stage, (_, _, ylabel)) in zip(axes, CURVE_METRICS.items()):
        for method in methods:
            runs = [metric_curve(d, stage) for d in run_dirs(work_dir, stage, method, seeds)]
            curve_band(ax, runs, LABELS[method])
            mean = mean_curve(runs)
            start = plateau_start(mean)
            if start is not None:
                ax.plot([start], [dict(mean)[start]], marker='o', mfc='none', color=ax.lines[-1].get_color())
        ax.set_xlabel('student iteration' if stage == 'cls' else 'detector iteration')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc='lower right')
    fig.suptitle(f'convergence: mean over {len(seeds)} seed{"s" if len(seeds) > 1 else ""}, band min-max, '
                 'o = from here within 1 point of the end', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grad_share_records(run_dir: str) -> List[dict]:
    """A run's gradient-share scalars (mmkd's distillation diagnostics), in step order."""
    return [r for r in scalar_records(run_dir) if any(k.startswith('grad_share_') for k in r)]


def grad_share_curves(work_dir: str, methods: List[str], seeds: List[int], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3), squeeze=False)
    for ax, method in zip(axes[0], methods):
        runs = [grad_share_records(d) for d in run_dirs(work_dir, 'cls', method, seeds)]
        keys = sorted({k for run in runs for r in run for k in r if k.startswith('grad_share_')})
        for key in keys:
            curve_band(ax, [[(r['step'], r[key]) for r in run if key in r] for run in runs], key[len('grad_share_'):])
        ax.axhline(1.0, color='grey', lw=0.8, ls='--')   # the term pulls as hard as the task
        ax.set_title(f'{LABELS[method]} ({len(seeds)} seeds)')
        ax.set_xlabel('iteration')
        ax.set_yscale('log')
        if keys:
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, 'no distillation term', ha='center', va='center', transform=ax.transAxes)
    axes[0][0].set_ylabel('||grad term|| / ||grad task||')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grad_share_table(work_dir: str, methods: List[str], seeds: List[int]) -> str:
    lines = ['| method | last gradient share of each term, mean ± std over seeds (iteration) |', '|---|---|']
    for method in methods:
        lasts = [records[-1] for records in map(grad_share_records, run_dirs(work_dir, 'cls', method, seeds)) if records]
        if not lasts:
            continue
        shares = []
        for key in sorted(k for k in lasts[0] if k.startswith('grad_share_')):
            stats = summarize([last[key] for last in lasts])
            spread = '' if stats['std'] is None else f' ± {stats["std"]:.2g}'
            shares.append(f'{key[len("grad_share_"):]} {stats["mean"]:.3g}{spread}')
        lines.append(f'| {LABELS[method]} | {", ".join(shares)} ({lasts[0]["step"]}) |')
    return '\n'.join(lines) + '\n'


def attention_figure(data_dir: str, teacher: dict, students: Dict[str, dict], path: str, images: int = 4) -> None:
    """Attention maps (AT's normalised mean_c |A|^2) at the distillation taps of teacher and students
    on a few validation digits: before distillation (the student alone) and after."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import load_checkpoint
    from PIL import Image

    import mmkd  # noqa: F401
    from mmkd.distill import FeatureRecorder, Tap
    from mmkd.losses.at import attention_map
    from mmkd.registry import MODELS

    init_default_scope('mmkd')
    base = Config.fromfile(osp.join(CONFIGS, 'digits_distill_base.py'))
    files = sorted(osp.join(dp, f) for dp, _, fs in os.walk(osp.join(data_dir, 'digits', 'val')) for f in fs)
    files = files[::max(1, len(files) // images)][:images]
    pixels = torch.stack([torch.from_numpy(np.array(Image.open(f).convert('RGB'))).permute(2, 0, 1) for f in files])

    def maps(config: str, checkpoint: str, tap) -> torch.Tensor:
        model_cfg = Config.fromfile(osp.join(CONFIGS, config)).model
        model = MODELS.build(model_cfg.get('student', model_cfg))
        load_checkpoint(model, checkpoint, map_location='cpu', revise_keys=[(r'^student\.', '')], logger='silent')
        model.eval()
        recorder = FeatureRecorder(model, [Tap.parse(tap)], 'model')
        with torch.no_grad():
            # Images are read as RGB here; the configs convert BGR -> RGB, so hand them BGR.
            model(model.data_preprocessor(dict(inputs=list(pixels.flip(1))))['inputs'])
        feat = recorder.get(Tap.parse(tap))
        return attention_map(feat, 2).reshape(len(files), *feat.shape[-2:])

    columns = [('teacher', maps('digits_resnet18_teacher.py', teacher['checkpoint'], base.teacher_tap))]
    for method, result in students.items():
        if method in ('baseline', 'at', 'nst_poly', 'kd_nst'):
            config = 'digits_inception_bn_baseline.py' if method == 'baseline' else f'digits_inception_bn_{method}.py'
            title = 'student alone' if method == 'baseline' else f'student, {LABELS[method]}'
            columns.append((title, maps(config, result['checkpoint'], base.student_tap)))
    fig, axes = plt.subplots(len(files), len(columns) + 1, figsize=(1.8 * (len(columns) + 1), 1.8 * len(files)),
                             squeeze=False)
    for row in range(len(files)):
        axes[row][0].imshow(pixels[row].permute(1, 2, 0).numpy())
        for col, (title, values) in enumerate(columns, start=1):
            axes[row][col].imshow(values[row].numpy(), cmap='jet', interpolation='bilinear')
            if row == 0:
                axes[row][col].set_title(title, fontsize=7)
    for ax in axes.flat:
        ax.axis('off')
    fig.suptitle('attention maps at the distillation tap (stride 16)', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    allow_mmengine_checkpoints()   # the attention figure loads the runs' checkpoints in this process
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(DEFAULT_METHODS),
                        help='students to run (the student alone is always run, for comparison)')
    parser.add_argument('--seeds', type=int, default=3, help='seeds 0 .. N-1 for every student and detector')
    parser.add_argument('--jobs', type=int, help='runs at a time (default: 2 on a CPU with 2+ cores, 1 on CUDA)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--redo', action='store_true', help='rerun finished runs instead of reusing them')
    parser.add_argument('--profile', choices=sorted(PROFILES), default='full')
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--data-dir', default=osp.join(REPO, 'data', 'demo'))
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f'--seeds {args.seeds}: at least 1.')
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            parser.error('--device cuda: torch sees no CUDA device here.')
    jobs = args.jobs or (1 if args.device == 'cuda' else min(2, os.cpu_count() or 1))
    profile = PROFILES[args.profile]
    methods = ['baseline'] + [m for m in args.methods if m != 'baseline']
    seeds = list(range(args.seeds))
    demo = Demo(args.work_dir, args.data_dir, profile, args.redo, args.device, jobs)
    demo.total_steps = 1 + 2 * len(methods) * len(seeds)
    os.makedirs(args.work_dir, exist_ok=True)

    demo.say(f'data: scikit-learn digits -> {args.data_dir}')
    make_demo_data(args.data_dir, **profile['data'])
    demo.say(f'{demo.total_steps} runs, {jobs} at a time: the teacher (once), then for each of {len(seeds)} seeds '
             f'the students ({", ".join(LABELS[m] for m in methods)}) and a Faster R-CNN on each')
    # The student alone needs no teacher: it trains beside it. Students before detectors, so a
    # detector never waits for a student that has not started.
    jobs_ = Scheduler(jobs)
    jobs_.add('teacher', [], demo.teacher)
    for seed in seeds:
        for method in methods:
            needs = [] if method == 'baseline' else ['teacher']
            jobs_.add(f'cls_{method}_{seed}', needs,
                      lambda teacher=None, method=method, seed=seed: demo.student(
                          method, seed, teacher['checkpoint'] if teacher else None))
    for seed in seeds:
        for method in methods:
            jobs_.add(f'det_{method}_{seed}', [f'cls_{method}_{seed}'],
                      lambda student, method=method, seed=seed: demo.detector(method, seed, student))
    results = jobs_.run()

    minutes = (time.time() - demo.start) / 60
    cls_rows = comparison(args.work_dir, 'cls', methods, seeds)
    det_rows = comparison(args.work_dir, 'det', methods, seeds)
    table = results_table(results['teacher'], cls_rows, det_rows)
    machine = f'{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}'
    interval = evaluation_interval(det_rows)
    note = (f'\nDigits demo (tools/demo.py), {len(seeds)} seed{"s" if len(seeds) > 1 else ""} ({", ".join(map(str, seeds))}) '
            f'per method, {machine}, device {args.device}, {jobs} runs at a time; {minutes:.1f} min. '
            + ('mean ± std over seeds; Δ: the mean per-seed difference to the student alone with its 95 % t-interval, '
               '* where it excludes zero. ' if len(seeds) > 1 else
               'One seed: no spread over seeds, no interval for the differences. ')
            + (f'The evaluation\'s own uncertainty (bootstrap over the {profile["data"]["det_test"]} test images, one '
               f'run): ±{interval:.1f} mAP points on average.\n' if interval is not None else '\n'))
    plateaus = convergence(args.work_dir, methods, seeds)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write('# mmkd digits demo\n\n' + table + note + '\n' + resolution(cls_rows, det_rows) +
                '\n## Convergence\n\n' + convergence_table(plateaus, profile) +
                '\n## Detection, per class (mean over seeds)\n\n' + markdown_comparison(det_rows) +
                '\n\n## Gradient shares\n\n||grad term|| / ||grad task|| on the student parameters each term reaches, '
                'at the last measurement (grad_shares.png: over training).\n\n' +
                grad_share_table(args.work_dir, methods, seeds))
    bar_chart(det_rows, osp.join(args.work_dir, 'map.png'))
    convergence_figure(args.work_dir, methods, seeds, osp.join(args.work_dir, 'convergence.png'))
    loss_curves(args.work_dir, methods, seeds, osp.join(args.work_dir, 'loss_curves.png'))
    grad_share_curves(args.work_dir, [m for m in methods if m != 'baseline'], seeds,
                      osp.join(args.work_dir, 'grad_shares.png'))
    students = {m: results[f'cls_{m}_0'] for m in methods}
    attention_figure(args.data_dir, results['teacher'], students, osp.join(args.work_dir, 'attention.png'))
    print('\n' + table + note + '\n' + resolution(cls_rows, det_rows))
    demo.say(f'wrote {args.work_dir}/results.md, map.png, convergence.png, loss_curves.png, grad_shares.png, '
             'attention.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
