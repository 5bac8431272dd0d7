"""The training step's speed: no host synchronisation of mmkd's own in a step, channels_last and
torch.compile equal to eager, and tools/benchmark_throughput.py on the CPU."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

import mmkd
from mmkd.cli import build_runner
from mmkd.registry import MODELS
from test_distill import STUDENT, TEACHER, runner_cfg, teacher_checkpoint  # noqa: F401 (fixture)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMKD = osp.dirname(mmkd.__file__) + os.sep
# Every way Python code reads a tensor's value on the host (on a GPU each waits for the device).
HOST_READS = ('item', 'tolist', 'numpy', 'cpu', '__bool__', '__float__', '__int__', '__index__')


@pytest.fixture(autouse=True)
def mmkd_scope():
    init_default_scope('mmkd')


class IterationMark(Hook):
    """Tells the host-read counter which training iteration (0-based) is running."""

    priority = 'HIGHEST'

    def __init__(self, reads):
        self.reads = reads

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.reads.iteration = runner.iter


class KeepInitialWeights(Hook):
    """The student's weights as training starts (after the runner's weight initialisation)."""

    def before_train(self, runner):
        self.state = {k: v.clone() for k, v in runner.model.student.state_dict().items()}


class CountGraphs(Hook):
    """How many graphs dynamo has compiled after each training iteration."""

    def __init__(self):
        self.after = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        import torch._dynamo
        self.after.append(torch._dynamo.utils.counters['stats']['unique_graphs'])


class HostReads(list):
    iteration = None


@pytest.fixture
def host_reads(monkeypatch):
    """(iteration, 'file:line method') of each host read whose caller is mmkd's code."""
    reads = HostReads()
    for name in HOST_READS:
        def counting(self, *args, _original=getattr(torch.Tensor, name), _name=name, **kwargs):
            caller = sys._getframe(1).f_code
            if caller.co_filename.startswith(MMKD):
                reads.append((reads.iteration, f'{caller.co_filename[len(MMKD):]}:{sys._getframe(1).f_lineno} {_name}'))
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counting)
    return reads


def distiller_run(tmp_path, teacher_checkpoint, fused, reads, iters=10):
    model = dict(type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                 grad_share=dict(interval=5),
                 distill=[dict(loss=dict(type='mmkd.KDLoss', loss_weight=1.0), student='head', teacher='head'),
                          dict(loss=dict(type='mmkd.NSTLoss', kernel='poly'), student='backbone.layer4',
                               teacher='backbone.layer4'),
                          dict(loss=dict(type='mmkd.ATLoss', loss_weight=100.0), student='backbone.layer3',
                               teacher='backbone.layer3')])
    cfg = runner_cfg(tmp_path, model, max_iters=iters, hooks=[dict(type='NonFiniteGuardHook')],
                     optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, fused=fused)))
    cfg.default_hooks.logger.interval = 5
    cfg.default_hooks.checkpoint.interval = 10
    runner = Runner.from_cfg(cfg)
    runner.register_hook(IterationMark(reads))
    runner.train()
    return runner


def test_no_host_read_of_mmkds_own_in_a_training_step(tmp_path, teacher_checkpoint, host_reads):
    """KD + NST + AT through the Distiller with the non-finite guard, fused SGD: mmkd reads a value
    on the host only where it must: the guard's first step (torch's fused SGD cannot skip a first
    step cleanly) and its checks at the logger's interval (iterations 5 and 10), the gradient-share
    measurement every 5 iterations, and the checkpoint's check. Iterations 2-4 and 7-9 read nothing."""
    runner = distiller_run(tmp_path, teacher_checkpoint, True, host_reads)
    guard = next(h for h in runner.hooks if type(h).__name__ == 'NonFiniteGuardHook')
    assert guard.on_device
    by_iteration = {}
    for iteration, where in host_reads:
        if iteration is not None:    # None: building the model (the teacher's checks), before any step
            by_iteration.setdefault(iteration, set()).add(where.split(':')[0])
    assert set(by_iteration) <= {0, 4, 5, 9}, by_iteration
    assert {f for files in by_iteration.values() for f in files} <= {
        'engine/nonfinite_guard.py', 'distill/gradient_share.py'}, by_iteration


def test_host_guard_reads_every_step_the_counter_sees_it(tmp_path, teacher_checkpoint, host_reads):
    """The same run under plain SGD: the guard decides on the host, every iteration (the counter
    catches a per-step read)."""
    runner = distiller_run(tmp_path, teacher_checkpoint, False, host_reads, iters=4)
    guard = next(h for h in runner.hooks if type(h).__name__ == 'NonFiniteGuardHook')
    assert not guard.on_device
    assert {i for i, where in host_reads if 'nonfinite_guard.py' in where} == {0, 1, 2, 3}


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


# float32 with reordered reductions (mkldnn's NHWC kernels, inductor's fused kernels): each output
# sums at most a few thousand products here (3x3x256 convolutions, batch-norm over a batch), whose
# rounding error is bounded by n * 2^-24 relative to the sum of magnitudes, ~1e-4 at n ~ 2000.
REORDERED_FP32 = 1e-4


@pytest.mark.numerics
def test_channels_last_student_equals_nchw():
    torch.manual_seed(0)
    nchw = MODELS.build(STUDENT)
    nhwc = MODELS.build({**STUDENT, 'channels_last': True})
    nhwc.load_state_dict(nchw.state_dict())
    conv = nhwc.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    inputs = torch.randn(4, 3, 64, 64)
    samples = [BaseDataElement(gt_label=torch.tensor(i % 4)) for i in range(4)]
    losses = {}
    for name, model in (('nchw', nchw), ('nhwc', nhwc)):
        model.train()
        losses[name] = model(inputs, samples, mode='loss')['loss_cls']
        losses[name].backward()
    assert relative_difference(losses['nhwc'].detach(), losses['nchw'].detach()) <= REORDERED_FP32
    for (name, p), q in zip(nchw.named_parameters(), nhwc.parameters()):
        assert relative_difference(q.grad, p.grad) <= REORDERED_FP32, name


@pytest.mark.numerics
def test_compile_key_equals_eager(tmp_path, teacher_checkpoint, monkeypatch):
    """The config's compile=True (mmengine compiles the train step; dynamo compiles the student's and
    the teacher's forwards with their taps) under the ImageNet configs' fused SGD and the guard's
    device path: the same losses and weights as eager after 4 steps, and no recompilation once warm."""
    import tempfile

    import torch._dynamo
    import toy_parts
    # torch 2.14's inductor keys its precompiled C++ header without ATEN_CPU_CAPABILITY: a cache
    # written under one kernel path fails to compile under another (make test-numerics runs both).
    capability = os.environ.get('ATEN_CPU_CAPABILITY', 'native')
    monkeypatch.setenv('TORCHINDUCTOR_CACHE_DIR', osp.join(tempfile.gettempdir(), f'torchinductor_mmkd_{capability}'))
    model = dict(type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                 grad_share=None,
                 distill=[dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head'),
                          dict(loss=dict(type='mmkd.NSTLoss', kernel='poly'), student='backbone.layer4',
                               teacher='backbone.layer4')])
    runs = {}
    for compiled in (False, True):
        cfg = runner_cfg(tmp_path / str(compiled), model, max_iters=4, hooks=[dict(type='NonFiniteGuardHook')],
                         optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, fused=True)),
                         **(dict(compile=True) if compiled else {}))
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        toy_parts.RecordLossesHook.records = []
        runner = build_runner(cfg)   # tools/train.py's: a Distiller's compile goes to its forwards
        initial, graphs = KeepInitialWeights(), CountGraphs()
        runner.register_hook(initial)
        runner.register_hook(graphs)
        runner.train()
        runs[compiled] = initial.state, runner.model.student.state_dict(), list(toy_parts.RecordLossesHook.records)
    assert graphs.after[0] > 0                      # it did compile
    assert graphs.after[1] == graphs.after[2]       # and compiled nothing more once warm (no recompiles)
    for eager, compiled in zip(runs[False][2], runs[True][2]):
        for name in eager:
            assert abs(compiled[name] - eager[name]) <= REORDERED_FP32 * max(abs(eager[name]), 1e-3), name
    # The weights' change over the 4 steps, all tensors as one vector: a norm-wise bound, since single
    # elements (a batch-norm bias's gradient, a sum of 4096 terms that nearly cancel) have no relative one.
    names = [n for n, v in runs[False][0].items() if v.is_floating_point()]
    assert all(torch.equal(runs[True][0][n], runs[False][0][n]) for n in names)   # the same start
    change = {c: torch.cat([(runs[c][1][n] - runs[c][0][n]).flatten() for n in names]) for c in runs}
    assert float((change[True] - change[False]).norm() / change[False].norm()) <= REORDERED_FP32

def test_benchmark_throughput_runs_on_the_cpu(tmp_path):
    out = tmp_path / 'throughput.md'
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'benchmark_throughput.py'), '--device', 'cpu',
                           '--cases', 'kd_nst', '--paths', 'runner', 'loop', '--out', str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = out.read_text()
    assert ('Command: `python tools/benchmark_throughput.py --device cpu --cases kd_nst --paths runner loop '
            '--batches 4 --image 64 --steps 3 --warmup 2`') in table
    row = next(line for line in table.splitlines() if line.startswith('| kd_nst |'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[1] == '4' and float(cells[2]) > 0 and float(cells[3]) > 0
    runner, loop, ratio = float(cells[2]), float(cells[3]), float(cells[4])
    # runner/loop step time = loop rate / runner rate, up to the rounding of the printed numbers
    assert abs(ratio - loop / runner) <= loop / runner * (0.05 / runner + 0.05 / loop) + 0.0005
