"""Every fault that used to pass silently now stops loudly, names its cause, and loses nothing."""
import math
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from PIL import Image

from conftest import write_cifar, write_jpeg, write_vocdevkit
from mmkd.datasets import DataFileError
from mmkd.distill.teacher import TeacherCheckpointError, build_teacher
from mmkd.engine import NonFiniteError, NonFiniteGuardHook
from mmkd.registry import DATASETS, MODELS, TRANSFORMS
from test_distill import STUDENT, TEACHER, batch, runner_cfg, teacher_checkpoint  # noqa: F401 (fixture)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(REPO, 'tests', 'fixtures')
TOY = osp.join(FIXTURES, 'toy_config.py')


@pytest.fixture(autouse=True)
def mmkd_scope():
    init_default_scope('mmkd')


def run_tool(*args, env=None):
    env = dict(os.environ, PYTHONPATH=FIXTURES, **(env or {}))
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def train_toy(work, *options):
    return run_tool('tools/train.py', TOY, '--work-dir', str(work), '--cfg-options',
                    'default_hooks.checkpoint.interval=2', *options)


def finite_checkpoint(path):
    state = torch.load(path, weights_only=True)['state_dict']
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


# ------------------------------------------------------------------ 1. non-finite losses
def test_nan_loss_stops_and_keeps_the_good_checkpoint(tmp_path):
    rc, out = train_toy(tmp_path, 'train_cfg.max_iters=6', 'model.nan_from=3')
    assert rc != 0
    assert 'non-finite loss at iteration 3: loss_mse=nan' in out
    assert finite_checkpoint(tmp_path / 'iter_2.pth')
    assert not (tmp_path / 'iter_4.pth').exists()
    assert (tmp_path / 'last_checkpoint').read_text().strip().endswith('iter_2.pth')


def test_finite_loss_with_nan_gradients_stops_before_the_update(tmp_path):
    rc, out = train_toy(tmp_path, 'train_cfg.max_iters=6', 'model.nan_from=3', 'model.nan_grad=True')
    assert rc != 0
    assert 'non-finite gradient at iteration 3 (finite loss): linear.weight' in out
    assert finite_checkpoint(tmp_path / 'iter_2.pth') and not (tmp_path / 'iter_4.pth').exists()


def test_skip_mode_skips_then_stops(tmp_path):
    rc, out = train_toy(tmp_path / 'once', 'train_cfg.max_iters=4', 'model.nan_from=3', 'model.nan_until=4',
                        "nonfinite_guard.mode=skip")
    assert rc == 0, out
    assert 'skipped without updating the weights (1 of at most 10)' in out
    assert finite_checkpoint(tmp_path / 'once' / 'iter_4.pth')
    rc, out = train_toy(tmp_path / 'always', 'train_cfg.max_iters=8', 'model.nan_from=3',
                        'nonfinite_guard.mode=skip', 'nonfinite_guard.max_skips=2')
    assert rc != 0
    assert 'non-finite loss at iteration 5: loss_mse=nan after skipping 2 bad iterations' in out
    assert finite_checkpoint(tmp_path / 'always' / 'iter_4.pth')  # the skipped iterations left no mark


class WatchWeights(Hook):
    """Records the iterations whose update changed the toy's weights."""

    def __init__(self):
        self.changed = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before = runner.model.linear.weight.detach().clone()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not torch.equal(self.before, runner.model.linear.weight):
            self.changed.append(runner.iter + 1)


def test_skip_mode_keeps_the_accumulation_window(tmp_path):
    """accumulative_counts=2 and a NaN at iteration 3 (the first half of the second window): the
    optimizer still steps at iterations 2, 4 and 6, the one at 4 with iteration 4's gradient alone,
    and the weights stay finite."""
    cfg = Config.fromfile(TOY)
    cfg.merge_from_dict({'work_dir': str(tmp_path), 'train_cfg.max_iters': 6, 'model.nan_from': 3,
                         'model.nan_until': 4, 'optim_wrapper.accumulative_counts': 2,
                         'optim_wrapper.optimizer': dict(type='SGD', lr=0.1)})
    cfg.custom_hooks = [dict(type='mmkd.NonFiniteGuardHook', mode='skip')]
    runner = Runner.from_cfg(cfg)
    watch = WatchWeights()
    runner.register_hook(watch, priority='LOWEST')
    runner.train()
    assert watch.changed == [2, 4, 6]
    assert all(bool(torch.isfinite(p).all()) for p in runner.model.parameters())


def device_guarded_run(tmp_path, guard, watch=None, **cfg_options):
    """The toy regressor under fused SGD (the optimizer takes the guard's device-side flag) with the
    logger, and so the guard's checks, every 4 iterations."""
    cfg = Config.fromfile(TOY)
    cfg.merge_from_dict({'work_dir': str(tmp_path), 'optim_wrapper.optimizer.fused': True,
                         'default_hooks.logger.interval': 4, **cfg_options})
    cfg.custom_hooks = [dict(type='mmkd.NonFiniteGuardHook', **guard)]
    runner = Runner.from_cfg(cfg)
    if watch is not None:
        runner.register_hook(watch, priority='LOWEST')
    return runner


def test_device_guard_stops_at_its_check_without_a_bad_update_or_checkpoint(tmp_path):
    watch = WatchWeights()
    runner = device_guarded_run(tmp_path, dict(), watch, **{'train_cfg.max_iters': 8, 'model.nan_from': 3})
    with pytest.raises(NonFiniteError, match=r'non-finite loss at iteration 3: loss_mse=nan\. Training stopped '
                                             r'at iteration 4; no non-finite update was applied'):
        runner.train()
    assert runner.optim_wrapper.step.__name__ == 'device_guarded_step'
    assert watch.changed == [1, 2]                       # iterations 3 and 4 skipped on the device
    assert finite_checkpoint(tmp_path / 'iter_2.pth') and not (tmp_path / 'iter_4.pth').exists()


def test_device_guard_skip_mode_counts_at_the_checks(tmp_path, capsys):
    watch = WatchWeights()
    runner = device_guarded_run(tmp_path, dict(mode='skip', max_skips=3), watch,
                                **{'train_cfg.max_iters': 12, 'model.nan_from': 3, 'model.nan_until': 5,
                                   'default_hooks.checkpoint.interval': 12})
    runner.train()
    assert watch.changed == [1, 2, 5, 6, 7, 8, 9, 10, 11, 12]
    assert runner.hooks[[type(h).__name__ for h in runner.hooks].index('NonFiniteGuardHook')].skipped == 2
    assert all(bool(torch.isfinite(p).all()) for p in runner.model.parameters())
    runner = device_guarded_run(tmp_path / 'always', dict(mode='skip', max_skips=3), None,
                                **{'train_cfg.max_iters': 12, 'model.nan_from': 3, 'default_hooks.checkpoint.interval': 12})
    with pytest.raises(NonFiniteError, match=r'iteration 5: loss_mse=nan \(6 bad iterations, more than max_skips=3\)'):
        runner.train()


def test_device_guard_catches_nan_gradients_under_a_finite_loss(tmp_path):
    watch = WatchWeights()
    runner = device_guarded_run(tmp_path, dict(), watch, **{'train_cfg.max_iters': 8, 'model.nan_from': 3,
                                                            'model.nan_grad': True})
    with pytest.raises(NonFiniteError, match=r'non-finite gradient at iteration 3 \(finite loss; '):
        runner.train()
    assert watch.changed == [1, 2]


def test_device_guard_decides_its_first_step_on_the_host(tmp_path):
    """torch's fused SGD, told to skip its first step, leaves its momentum buffer uninitialised."""
    runner = device_guarded_run(tmp_path, dict(), None, **{'train_cfg.max_iters': 4, 'model.nan_from': 1})
    with pytest.raises(NonFiniteError, match=r'non-finite loss at iteration 1: loss_mse=nan\. Training stopped at '
                                             r'iteration 1'):
        runner.train()
    runner = device_guarded_run(tmp_path / 'skip', dict(mode='skip'), None,
                                **{'train_cfg.max_iters': 4, 'model.nan_from': 1, 'model.nan_until': 2})
    runner.train()
    momentum = runner.optim_wrapper.optimizer.state[runner.model.linear.weight]['momentum_buffer']
    assert bool(torch.isfinite(momentum).all())


@pytest.mark.slow
def test_device_guard_ranks_stop_together(tmp_path):
    """2 processes (tools/dist_train.sh, gloo), fused SGD, a NaN loss on rank 1 only from iteration 3:
    the step flag is common, so both ranks skip the update and both stop at the check of iteration 4
    (neither waits in a collective for the other), before the checkpoint of iteration 4."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29700 + os.getpid() % 200),
               PYTHONPATH=FIXTURES, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), TOY, '2', '--work-dir', str(tmp_path),
                           '--cfg-options', 'train_cfg.max_iters=8', 'model.nan_from=3', 'model.nan_rank=1',
                           'optim_wrapper.optimizer.fused=True', 'default_hooks.logger.interval=4',
                           'default_hooks.checkpoint.interval=2'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'non-finite loss at iteration 3: loss_mse=nan. Training stopped at iteration 4' in out   # rank 1
    assert 'non-finite gradient at iteration 3 (finite loss' in out                                  # rank 0
    assert finite_checkpoint(tmp_path / 'iter_2.pth') and not (tmp_path / 'iter_4.pth').exists()


def test_nan_distillation_term_is_named(tmp_path, teacher_checkpoint):
    teacher = torch.load(teacher_checkpoint, weights_only=True)
    teacher['state_dict']['backbone.layer4.1.conv2.weight'].fill_(float('nan'))
    torch.save(teacher, tmp_path / 'nan_teacher.pth')
    model = dict(type='Distiller', student=STUDENT,
                 teacher=dict(model=TEACHER, checkpoint=str(tmp_path / 'nan_teacher.pth')),
                 distill=[dict(loss=dict(type='mmkd.NSTLoss'), student='backbone.layer4',
                               teacher='backbone.layer4')])
    runner = Runner.from_cfg(runner_cfg(tmp_path, model, hooks=[dict(type='NonFiniteGuardHook')]))
    with pytest.raises(NonFiniteError, match=r'iteration 1: loss_nst=nan\.'):
        runner.train()
    assert all(bool(torch.isfinite(p).all()) for p in runner.model.student.parameters())


def test_checkpoint_with_nonfinite_weights_is_refused(tmp_path):
    class Runner:
        iter, work_dir = 7, str(tmp_path)
    with pytest.raises(NonFiniteError, match='iteration 7: weight head.bias is not finite'):
        NonFiniteGuardHook().before_save_checkpoint(
            Runner(), dict(state_dict={'head.weight': torch.ones(2), 'head.bias': torch.tensor([1., math.inf])}))


def test_guard_can_be_switched_off(tmp_path):
    rc, out = train_toy(tmp_path, 'train_cfg.max_iters=4', 'model.nan_from=3', 'nonfinite_guard=None')
    assert rc == 0 and 'non-finite' not in out


# ------------------------------------------------------------------ 2. teacher checkpoints
def test_teacher_of_another_architecture_is_refused_even_when_not_strict(tmp_path):
    torch.manual_seed(0)
    torch.save(dict(state_dict=MODELS.build(STUDENT).state_dict()), tmp_path / 'student.pth')
    with pytest.raises(TeacherCheckpointError, match=r'filled 1\.0%.*101 shape-mismatched: backbone\.conv1\.weight \(8, 3, 7, 7\) vs \(16, 3, 7, 7\)'):
        build_teacher(dict(model=TEACHER, checkpoint=str(tmp_path / 'student.pth'), strict=False))


def test_teacher_with_a_key_prefix_names_the_fix(tmp_path, teacher_checkpoint):
    state = torch.load(teacher_checkpoint, weights_only=True)['state_dict']
    torch.save(dict(state_dict={f'student.{k}': v for k, v in state.items()}), tmp_path / 'prefixed.pth')
    with pytest.raises(TeacherCheckpointError, match=r"filled 0\.0%.*remove the prefix 'student\.'"):
        build_teacher(dict(model=TEACHER, checkpoint=str(tmp_path / 'prefixed.pth'), strict=False))


def test_wrong_teacher_stops_tools_train(tmp_path):
    torch.manual_seed(0)
    torch.save(dict(state_dict=MODELS.build(STUDENT).state_dict()), tmp_path / 'student.pth')
    cfg = runner_cfg(tmp_path, dict(type='Distiller', student=STUDENT,
                                    teacher=dict(model=TEACHER, checkpoint=str(tmp_path / 'student.pth')),
                                    distill=[dict(loss=dict(type='mmkd.KDLoss'), student='head',
                                                  teacher='head')]),
                     custom_imports=dict(imports=['mmkd', 'toy_parts'], allow_failed_imports=False))
    cfg.dump(str(tmp_path / 'wrong_teacher.py'))
    rc, out = run_tool('tools/train.py', str(tmp_path / 'wrong_teacher.py'))
    assert rc != 0 and 'TeacherCheckpointError' in out and 'student.pth' in out


def test_distiller_load_from_a_plain_student_checkpoint(tmp_path, teacher_checkpoint):
    torch.manual_seed(4)
    student = MODELS.build(STUDENT)
    torch.save(dict(state_dict=student.state_dict()), tmp_path / 'plain_student.pth')
    model = dict(type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                 distill=[dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head')])
    runner = Runner.from_cfg(runner_cfg(tmp_path, model))
    runner.load_checkpoint(str(tmp_path / 'plain_student.pth'))
    for key, value in student.state_dict().items():
        assert torch.equal(runner.model.student.state_dict()[key], value), key
    torch.save(dict(state_dict={'encoder.weight': torch.zeros(3)}), tmp_path / 'other.pth')
    with pytest.raises(ValueError, match="no 'student.' keys and none of the student's own keys"):
        runner.load_checkpoint(str(tmp_path / 'other.pth'))


# ------------------------------------------------------------------ 3. the teacher follows the wrapper
def test_float64_distiller_with_feature_and_input_gradient_terms(teacher_checkpoint):
    distiller = MODELS.build(dict(
        type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
        distill=[dict(loss=dict(type='mmkd.NSTLoss'), student='backbone.layer4', teacher='backbone.layer4'),
                 dict(loss=dict(type='mmkd.GradATLoss', loss_weight=10.0))])).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in distiller.teacher.parameters())
    assert 'teacher' not in ''.join(distiller.state_dict())           # still never saved
    assert not any(p.requires_grad for p in distiller.teacher.parameters())
    MessageHub.get_current_instance().update_info('iter', 0)
    distiller.train()
    inputs, samples = batch()
    losses = distiller(inputs.double(), samples, mode='loss')
    for name in ('loss_nst', 'loss_grad_at'):
        assert losses[name].dtype == torch.float64 and torch.isfinite(losses[name]), name
    assert losses['loss_grad_at'] > 0


# ------------------------------------------------------------------ 4. corrupt data
def truncated_and_empty_jpegs(folder, rng):
    write_jpeg(folder / 'good.jpg', rng)
    data = (folder / 'good.jpg').read_bytes()
    (folder / 'truncated.jpg').write_bytes(data[:len(data) * 4 // 5])  # OpenCV decodes it, silently
    (folder / 'empty.jpg').write_bytes(b'')


def test_loader_names_truncated_and_empty_images(tmp_path):
    truncated_and_empty_jpegs(tmp_path, np.random.default_rng(0))
    load = TRANSFORMS.build(dict(type='LoadImageFromFile'))
    assert load(dict(img_path=str(tmp_path / 'good.jpg')))['img'].shape == (80, 96, 3)
    for name, cause in (('truncated.jpg', 'truncated JPEG'), ('empty.jpg', 'empty file')):
        with pytest.raises(DataFileError, match=f'{name}: {cause}.*tools/check_data.py'):
            load(dict(img_path=str(tmp_path / name)))


def test_voc_dataset_names_a_malformed_annotation(tmp_path):
    devkit = write_vocdevkit(tmp_path / 'VOCdevkit', np.random.default_rng(1), sets=(('2007', 'trainval', 2),))
    ids = (devkit / 'VOC2007' / 'ImageSets' / 'Main' / 'trainval.txt').read_text().split()
    (devkit / 'VOC2007' / 'Annotations' / f'{ids[1]}.xml').write_text('<annotation><size>')
    with pytest.raises(DataFileError, match=f'annotation .*{ids[1]}.xml: '):
        DATASETS.build(dict(type='VOCDataset', data_root=str(devkit), ann_file='VOC2007/ImageSets/Main/trainval.txt',
                            data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=('person', 'dog', 'car')),
                            pipeline=[]))


@pytest.mark.parametrize('spelling', ['plain', 'prefixed'])
def test_mmdet_scope_config_names_bad_files_through_mmkd_tools(tmp_path, spelling):
    """A config that keeps mmdet's scope and types (custom_imports=['mmkd']): mmkd's tools swap in the
    file-naming loaders (name_bad_data_files, called by build_runner), so a zero-byte image and a
    malformed annotation are named instead of OpenCV's or ElementTree's bare error."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from mmkd.cli import name_bad_data_files
    devkit = write_vocdevkit(tmp_path / 'VOCdevkit', np.random.default_rng(1), sets=(('2007', 'trainval', 3),))
    ids = (devkit / 'VOC2007' / 'ImageSets' / 'Main' / 'trainval.txt').read_text().split()
    (devkit / 'VOC2007' / 'JPEGImages' / f'{ids[0]}.jpg').write_bytes(b'')
    prefix = 'mmdet.' if spelling == 'prefixed' else ''
    dataset = dict(type=f'{prefix}VOCDataset', data_root=str(devkit), ann_file='VOC2007/ImageSets/Main/trainval.txt',
                   data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=('person', 'dog', 'car')),
                   pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)])
    cfg = Config(dict(default_scope='mmdet', custom_imports=dict(imports=['mmkd']),
                      train_dataloader=dict(batch_size=1, num_workers=0, dataset=dataset, collate_fn=dict(type='pseudo_collate'),
                                            sampler=dict(type='DefaultSampler', shuffle=False))))
    name_bad_data_files(cfg)
    assert cfg.train_dataloader.dataset.type == 'mmkd.VOCDataset'
    assert cfg.train_dataloader.dataset.pipeline[0].type == 'mmkd.LoadImageFromFile'
    assert cfg.train_dataloader.dataset.pipeline[1].type == 'LoadAnnotations'   # names no file: left alone
    with DefaultScope.overwrite_default_scope('mmdet'):
        loader = Runner.build_dataloader(cfg.train_dataloader)
        with pytest.raises(DataFileError, match=f'image .*{ids[0]}.jpg: empty file'):
            next(iter(loader))
        (devkit / 'VOC2007' / 'Annotations' / f'{ids[1]}.xml').write_text('<annotation><size>')
        with pytest.raises(DataFileError, match=f'annotation .*{ids[1]}.xml: '):
            Runner.build_dataloader(cfg.train_dataloader)


def test_check_data_voc_finds_truncated_and_empty_images(tmp_path):
    devkit = write_vocdevkit(tmp_path / 'VOCdevkit', np.random.default_rng(1), sets=(('2007', 'trainval', 3),))
    ids = (devkit / 'VOC2007' / 'ImageSets' / 'Main' / 'trainval.txt').read_text().split()
    jpeg = devkit / 'VOC2007' / 'JPEGImages' / f'{ids[0]}.jpg'
    jpeg.write_bytes(jpeg.read_bytes()[:-300])
    (devkit / 'VOC2007' / 'JPEGImages' / f'{ids[1]}.jpg').write_bytes(b'')
    rc, out = run_tool('tools/check_data.py', 'voc', str(devkit), '--sets', 'trainval',
                       '--classes', 'person', 'dog', 'car')
    assert rc == 1
    assert f'unreadable image: {jpeg}: image file is truncated' in out
    assert f'{ids[1]}.jpg: empty file (0 bytes)' in out
    assert '2 problem(s)' in out


def test_check_data_imagenet_folders_and_list_file(tmp_path):
    rng = np.random.default_rng(2)
    for cls in ('a', 'b'):
        (tmp_path / 'train' / cls).mkdir(parents=True)
        write_jpeg(tmp_path / 'train' / cls / 'ok.JPEG', rng)
    truncated_and_empty_jpegs(tmp_path / 'train' / 'b', rng)
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / 'train' / 'a' / 'png.JPEG',
                                                                          format='PNG')
    (tmp_path / 'train' / 'c').mkdir()
    rc, out = run_tool('tools/check_data.py', 'imagenet', str(tmp_path), '--splits', 'train')
    assert rc == 1
    assert 'truncated.jpg: image file is truncated' in out and 'empty.jpg: empty file' in out
    assert f'not a JPEG: {tmp_path / "train" / "a" / "png.JPEG"}: PNG data' in out
    assert f'empty class folder: {tmp_path / "train" / "c"}' in out
    (tmp_path / 'train.txt').write_text('a/ok.JPEG 0\nb/gone.JPEG 1\nb/ok.JPEG one\n')
    rc, out = run_tool('tools/check_data.py', 'imagenet', str(tmp_path), '--splits', 'train',
                       '--ann-file', 'train.txt')
    assert rc == 1
    assert f'missing image: {tmp_path / "train" / "b" / "gone.JPEG"}' in out
    assert "bad list line: " in out and ":3: 'b/ok.JPEG one'" in out
    assert '2 problem(s)' in out


def test_check_data_cifar_labels_and_batches(tmp_path):
    root = write_cifar(tmp_path, 10, np.random.default_rng(3))
    rc, out = run_tool('tools/check_data.py', 'cifar', str(root))
    assert rc == 0 and 'no problems found' in out, out
    batch_file = root / 'cifar-10-batches-py' / 'data_batch_2'
    content = pickle.loads(batch_file.read_bytes(), encoding='bytes')
    content[b'labels'][1] = 12
    batch_file.write_bytes(pickle.dumps(content, protocol=2))
    (root / 'cifar-10-batches-py' / 'test_batch').write_bytes(b'\x80\x02garbage')
    rc, out = run_tool('tools/check_data.py', 'cifar', str(root))
    assert rc == 1
    assert 'label out of range' in out and '1 labels outside [0, 10)' in out
    assert 'unreadable batch' in out and 'test_batch' in out


# ------------------------------------------------------------------ 6. weights_only
class Payload:
    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('tool', ['extract_student.py', 'convert_torchvision_resnet.py'])
def test_tools_never_unpickle_code(tmp_path, tool):
    Payload.marker = tmp_path / 'pwned'
    torch.save(dict(state_dict={'student.w': torch.zeros(1)}, evil=Payload()), tmp_path / 'evil.pth')
    rc, out = run_tool(f'tools/{tool}', str(tmp_path / 'evil.pth'), str(tmp_path / 'out.pth'),
                       env=dict(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1'))
    assert rc != 0 and 'Weights only load failed' in out
    assert not Payload.marker.exists()


# ------------------------------------------------------------------ 7. smaller
def test_syntax_error_in_a_base_file_names_it(tmp_path):
    (tmp_path / 'base.py').write_text('model = dict(type=\n')
    (tmp_path / 'child.py').write_text("_base_ = ['./base.py']\n")
    rc, out = run_tool('tools/train.py', str(tmp_path / 'child.py'))
    assert rc != 0 and f'its _base_ file {tmp_path / "base.py"} has a syntax error: line 1' in out


def test_resume_with_nothing_to_resume_says_so(tmp_path):
    rc, out = run_tool('tools/train.py', TOY, '--work-dir', str(tmp_path), '--resume')
    assert rc == 0, out
    assert 'no checkpoint in' in out and 'training from the start' in out
    assert 'resumed from the latest checkpoint None' not in out
    rc, out = run_tool('tools/train.py', TOY, '--work-dir', str(tmp_path), '--resume',
                       '--cfg-options', 'train_cfg.max_iters=4')
    assert rc == 0 and 'resumed' in out.lower() and 'iter_2.pth' in out


def test_torchrun_defaults_to_the_checkout_venv(tmp_path):
    script = tmp_path / 'which.py'
    script.write_text(f"import sys; open({str(tmp_path / 'exe')!r}, 'w').write(sys.executable)\n")
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    proc = subprocess.run(['bash', 'tools/torchrun.sh', '1', str(script)], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    venv = osp.join(REPO, '.venv', 'bin', 'python')
    assert osp.exists(venv), 'make setup creates the checkout venv the script should pick'
    assert (tmp_path / 'exe').read_text() == venv
