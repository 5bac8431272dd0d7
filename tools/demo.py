"""The whole mission on small real data, on a CPU: distillation pretraining -> Faster R-CNN -> VOC07 mAP.

    python tools/demo.py [--methods kd nst_poly] [--redo] [--profile full|quick]

1. data: scikit-learn's handwritten digits as an ImageNet-layout classification set and a
   VOCdevkit detection set (tools/demo_data.py; cached in data/demo/);
2. a teacher (ResNet-18 x0.5) and students (Inception-BN x0.25): alone and distilled with KD, AT,
   FitNet, NST-poly and KD+NST, each trained with tools/train.py and scored with tools/test.py;
3. a Faster R-CNN on each student backbone, scored with VOC07 11-point mAP;
4. work_dirs/demo/results.md (the paper-style table and each term's last gradient share), map.png,
   loss_curves.png, grad_shares.png (each term's ||grad term|| / ||grad task|| on the student
   parameters it reaches, over training, measured at every log interval) and attention.png.

Every run goes through the configs in configs/demo/; a finished run (its result.json) is reused
unless --redo. Whatever numbers come out are the numbers reported.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Dict, List, Optional

from mmkd import allow_mmengine_checkpoints
from mmkd.datasets.demo_data import make_demo_data
from mmkd.results import bar_chart, latest_metrics

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

METHODS = ('baseline', 'kd', 'at', 'fitnet', 'nst_poly', 'kd_nst')
LABELS = dict(baseline='student alone', kd='KD', at='AT', fitnet='FitNet', nst_poly='NST (poly)', kd_nst='KD+NST')
CONFIGS = osp.join(REPO, 'configs', 'demo')
DETECTOR = osp.join(CONFIGS, 'digits_faster-rcnn_inception-bn_fpn.py')

# Iterations and sizes. 'full' is `make demo` (about 16 minutes on 2 cores after set-up); 'quick'
# checks the pipeline end to end in the test suite.
PROFILES = {
    'full': dict(teacher_iters=400, student_iters=240, det_iters=250, cls_batch=64, det_batch=4,
                 data=dict(det_trainval=300, det_test=100, cls_train=0)),
    'quick': dict(teacher_iters=3, student_iters=3, det_iters=3, cls_batch=8, det_batch=2,
                  data=dict(det_trainval=6, det_test=4, cls_train=60)),
}


# The runs repeat exactly on one machine, but float sums depend on the CPU's vector kernels and the
# thread count: on the development machine (AVX-512), forcing AVX2 kernels or one thread changed the
# teacher's loss within 40 iterations. So the demo pins them (x86-64), unless the caller sets them.
REPRODUCIBLE_CPU = dict(ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2', MKL_CBWR='AVX2',
                        OMP_NUM_THREADS='2') if platform.machine() in ('x86_64', 'AMD64') else {}


class Demo:

    def __init__(self, work_dir: str, data_dir: str, profile: dict, redo: bool) -> None:
        self.work_dir = work_dir
        self.data_dir = data_dir
        self.profile = profile
        self.redo = redo
        self.start = time.time()
        self.step = 0
        self.total_steps = 0

    def say(self, message: str) -> None:
        elapsed = time.time() - self.start
        print(f'[{elapsed / 60:5.1f} min] {message}', flush=True)

    def tool(self, name: str, args: List[str], log: str) -> None:
        """Run tools/<name>.py as a user would, its output into log; fail loudly with its tail."""
        with open(log, 'w') as f:
            proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', f'{name}.py'), *args], cwd=REPO,
                                  stdout=f, stderr=subprocess.STDOUT,
                                  env={**REPRODUCIBLE_CPU, **os.environ, 'PYTHONUNBUFFERED': '1'})
        if proc.returncode != 0:
            with open(log) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f'tools/{name}.py failed (exit {proc.returncode}); end of {log}:\n{tail}')

    def run(self, name: str, config: str, options: List[str], test_options: List[str], prefix: str) -> dict:
        """Train (tools/train.py) and evaluate (tools/test.py) one config; cached by result.json."""
        self.step += 1
        run_dir = osp.join(self.work_dir, name)
        result_file = osp.join(run_dir, 'result.json')
        if not self.redo and osp.isfile(result_file):
            result = json.load(open(result_file))
            self.say(f'({self.step}/{self.total_steps}) {name}: reused ({summary(result)})')
            return result
        os.makedirs(run_dir, exist_ok=True)
        started = time.time()
        self.say(f'({self.step}/{self.total_steps}) {name}: training {osp.basename(config)}')
        self.tool('train', [config, '--work-dir', run_dir, '--cfg-options', *options], osp.join(run_dir, 'train.log'))
        checkpoint = open(osp.join(run_dir, 'last_checkpoint')).read().strip()
        test_dir = osp.join(run_dir, 'test')
        self.tool('test', [config, checkpoint, '--work-dir', test_dir, '--cfg-options', *test_options],
                  osp.join(run_dir, 'test.log'))
        result = dict(latest_metrics(test_dir, prefix), checkpoint=checkpoint, seconds=round(time.time() - started))
        json.dump(result, open(result_file, 'w'), indent=1)
        self.say(f'({self.step}/{self.total_steps}) {name}: done in {result["seconds"]} s ({summary(result)})')
        return result

    # ---------------------------------------------------------------- stages
    def classification_options(self, iters: int) -> List[str]:
        digits = osp.join(self.data_dir, 'digits')
        return [f'train_dataloader.dataset.data_root={digits}', f'val_dataloader.dataset.data_root={digits}',
                f'test_dataloader.dataset.data_root={digits}', f'train_dataloader.batch_size={self.profile["cls_batch"]}',
                f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters + 1}',
                f'default_hooks.checkpoint.interval={iters}', f'default_hooks.logger.interval={log_interval(iters)}']

    def detection_options(self, student_checkpoint: str) -> List[str]:
        iters = self.profile['det_iters']
        voc = osp.join(self.data_dir, 'VOCdevkit') + '/'
        return [f'train_dataloader.dataset.data_root={voc}', f'val_dataloader.dataset.data_root={voc}',
                f'test_dataloader.dataset.data_root={voc}', f'train_dataloader.batch_size={self.profile["det_batch"]}',
                f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters + 1}',
                f'default_hooks.checkpoint.interval={iters}', f'default_hooks.logger.interval={log_interval(iters)}',
                f'model.backbone.init_cfg.checkpoint={student_checkpoint}']

    def teacher(self) -> dict:
        config = osp.join(CONFIGS, 'digits_resnet18_teacher.py')
        options = self.classification_options(self.profile['teacher_iters'])
        return self.run('cls_teacher', config, options, options[:3], 'accuracy/')

    def student(self, method: str, teacher_checkpoint: str) -> dict:
        config = osp.join(CONFIGS, f'digits_inception_bn_{method}.py')
        options = self.classification_options(self.profile['student_iters'])
        distill_options = [f'model.teacher.checkpoint={teacher_checkpoint}',
                           f'model.grad_share.interval={log_interval(self.profile["student_iters"])}']
        train_options = options + ([] if method == 'baseline' else distill_options)
        result = self.run(f'cls_{method}', config, train_options, options[:3] + train_options[len(options):], 'accuracy/')
        if method != 'baseline' and 'backbone_checkpoint' not in result:
            # A Distiller checkpoint holds student.* keys: keep the student alone for detection.
            student = osp.join(self.work_dir, f'cls_{method}', 'student.pth')
            self.tool('extract_student', [result['checkpoint'], student], osp.join(self.work_dir, f'cls_{method}', 'extract.log'))
            result['backbone_checkpoint'] = student
            json.dump(result, open(osp.join(self.work_dir, f'cls_{method}', 'result.json'), 'w'), indent=1)
        return result

    def detector(self, method: str, student_checkpoint: str) -> dict:
        options = self.detection_options(student_checkpoint)
        return self.run(f'det_{method}', DETECTOR, options, options[:3], 'pascal_voc/')


def log_interval(iters: int) -> int:
    return max(1, min(20, iters // 10))


def summary(result: dict) -> str:
    if 'top1' in result:
        return f'top-1 {result["top1"]:.1f}%'
    return f'VOC07 mAP {100 * result["mAP"]:.1f}%'


# -------------------------------------------------------------------- report
def results_table(teacher: dict, students: Dict[str, dict], detectors: Dict[str, dict], minutes: float) -> str:
    lines = ['| method | student top-1 (%) | VOC07 mAP (%) |', '|---|---:|---:|',
             f'| teacher (ResNet-18 x0.5) | {teacher["top1"]:.1f} | — |']
    for method, result in students.items():
        lines.append(f'| {LABELS[method]} | {result["top1"]:.1f} | {100 * detectors[method]["mAP"]:.1f} |')
    machine = f'{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}'
    return '\n'.join(lines) + f'\n\nDigits demo (tools/demo.py), {machine}; {minutes:.1f} min.\n'


def loss_curves(work_dir: str, methods: List[str], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3), squeeze=False)
    for ax, method in zip(axes[0], methods):
        records = []
        for scalars in sorted(glob_scalars(osp.join(work_dir, f'cls_{method}'))):
            records += [json.loads(line) for line in open(scalars) if line.strip()]
        records = [r for r in records if 'loss' in r and 'iter' in r]
        for key in sorted({k for r in records for k in r if k.startswith('loss')}):
            points = [(r['iter'], r[key]) for r in records if key in r]
            ax.plot(*zip(*points), label=key)
        ax.set_title(LABELS[method])
        ax.set_xlabel('iteration')
        ax.set_yscale('log')
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grad_share_records(work_dir: str, method: str) -> List[dict]:
    """The run's gradient-share scalars (mmkd's distillation diagnostics), in step order."""
    records = []
    for scalars in sorted(glob_scalars(osp.join(work_dir, f'cls_{method}'))):
        records += [json.loads(line) for line in open(scalars) if line.strip()]
    return [r for r in records if any(k.startswith('grad_share_') for k in r)]


def grad_share_curves(work_dir: str, methods: List[str], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3), squeeze=False)
    for ax, method in zip(axes[0], methods):
        records = grad_share_records(work_dir, method)
        for key in sorted({k for r in records for k in r if k.startswith('grad_share_')}):
            points = [(r['step'], r[key]) for r in records if key in r]
            ax.plot(*zip(*points), marker='.', label=key[len('grad_share_'):])
        ax.axhline(1.0, color='grey', lw=0.8, ls='--')   # the term pulls as hard as the task
        ax.set_title(LABELS[method])
        ax.set_xlabel('iteration')
        ax.set_yscale('log')
        if records:
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, 'no distillation term', ha='center', va='center', transform=ax.transAxes)
    axes[0][0].set_ylabel('||grad term|| / ||grad task||')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grad_share_table(work_dir: str, methods: List[str]) -> str:
    lines = ['| method | last gradient share of each term (iteration) |', '|---|---|']
    for method in methods:
        records = grad_share_records(work_dir, method)
        if records:
            last = records[-1]
            shares = ', '.join(f'{k[len("grad_share_"):]} {v:.3g}' for k, v in sorted(last.items())
                               if k.startswith('grad_share_'))
            lines.append(f'| {LABELS[method]} | {shares} ({last["step"]}) |')
    return '\n'.join(lines) + '\n'


def glob_scalars(run_dir: str) -> List[str]:
    return glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))


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
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS),
                        help='students to run (the student alone is always run, for comparison)')
    parser.add_argument('--redo', action='store_true', help='rerun finished runs instead of reusing them')
    parser.add_argument('--profile', choices=sorted(PROFILES), default='full')
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--data-dir', default=osp.join(REPO, 'data', 'demo'))
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    methods = ['baseline'] + [m for m in args.methods if m != 'baseline']
    demo = Demo(args.work_dir, args.data_dir, profile, args.redo)
    demo.total_steps = 1 + 2 * len(methods)
    os.makedirs(args.work_dir, exist_ok=True)

    demo.say(f'data: scikit-learn digits -> {args.data_dir}')
    make_demo_data(args.data_dir, **profile['data'])
    demo.say('stage 1/3: teacher')
    teacher = demo.teacher()
    demo.say(f'stage 2/3: students ({", ".join(LABELS[m] for m in methods)})')
    students = {m: demo.student(m, teacher['checkpoint']) for m in methods}
    demo.say('stage 3/3: Faster R-CNN on each student backbone')
    detectors = {m: demo.detector(m, students[m].get('backbone_checkpoint', students[m]['checkpoint']))
                 for m in methods}

    minutes = (time.time() - demo.start) / 60
    table = results_table(teacher, students, detectors, minutes)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write('# mmkd digits demo\n\n' + table + '\n## Gradient shares\n\n||grad term|| / ||grad task|| on the '
                'student parameters each term reaches, at the last measurement (grad_shares.png: over '
                'training).\n\n' +
                grad_share_table(args.work_dir, methods))
    bar_chart([dict(method=LABELS[m], mAP=100 * detectors[m]['mAP']) for m in methods],
              osp.join(args.work_dir, 'map.png'))
    loss_curves(args.work_dir, methods, osp.join(args.work_dir, 'loss_curves.png'))
    grad_share_curves(args.work_dir, [m for m in methods if m != 'baseline'], osp.join(args.work_dir, 'grad_shares.png'))
    attention_figure(args.data_dir, teacher, students, osp.join(args.work_dir, 'attention.png'))
    print('\n' + table)
    demo.say(f'wrote {args.work_dir}/results.md, map.png, loss_curves.png, grad_shares.png, attention.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
