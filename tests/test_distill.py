"""The distillation engine through both front doors: hook and Distiller wrapper."""
import copy
import glob
import itertools
import json
import logging
import os
import os.path as osp
import subprocess
import sys
import time
import types

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch import nn

import toy_parts
from mmkd.checkpoints import extract_student
from mmkd.distill import DistillationHook, FeatureRecorder, Tap, build_teacher
from mmkd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RUN_NAMES = itertools.count()


@pytest.fixture(autouse=True)
def mmkd_scope():
    # A runner built from an mmdet config leaves 'mmdet' as the current default scope.
    init_default_scope('mmkd')


def classifier(base_channels: int, mean=(128., 128., 128.)) -> dict:
    return dict(type='ImageClassifier', num_classes=4, in_channels=base_channels * 8,
                backbone=dict(type='ResNet', depth=18, base_channels=base_channels, out_indices=(0, 1, 2, 3),
                              norm_eval=True),
                data_preprocessor=dict(type='ImgDataPreprocessor', mean=mean, std=(64., 64., 64.)))


STUDENT = classifier(8)
TEACHER = classifier(16)


@pytest.fixture
def teacher_checkpoint(tmp_path):
    torch.manual_seed(3)
    teacher = MODELS.build(TEACHER)
    path = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return str(path)


def batch(n=4, size=64):
    gen = torch.Generator().manual_seed(5)
    inputs = torch.randn(n, 3, size, size, generator=gen)
    samples = [BaseDataElement(gt_label=torch.tensor(i % 4)) for i in range(n)]
    return inputs, samples


def runner_cfg(tmp_path, model, max_iters=3, hooks=(), **overrides):
    cfg = dict(
        model=model, work_dir=str(tmp_path / 'work'), default_scope='mmkd',
        train_dataloader=dict(batch_size=4, num_workers=0, dataset=dict(type='ToyClassificationDataset'),
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[*hooks, dict(type='RecordLossesHook')],
        log_processor=dict(by_epoch=False), randomness=dict(seed=0), env_cfg=dict(dist_cfg=dict(backend='gloo')),
        experiment_name=f'run{next(RUN_NAMES)}')
    cfg.update(overrides)
    return Config(cfg)


train = toy_parts.train_recording


def nst_at_terms():
    return [dict(loss=dict(type='mmkd.NSTLoss', loss_weight=5.0), student='backbone.layer4',
                 teacher='backbone.layer4'),
            dict(loss=dict(type='mmkd.ATLoss', loss_weight=100.0), student='backbone.layer3',
                 teacher='backbone.layer3'),
            # Student widths (16, 32) at layer2/3 match the teacher's at layer1/2.
            dict(loss=dict(type='mmkd.FSPLoss', reduction='mean'), student=('backbone.layer2', 'backbone.layer3'),
                 teacher=(dict(module='backbone.layer1'), 'backbone.layer2'), name='fsp_12'),
            dict(loss=dict(type='mmkd.KDLoss', loss_weight=2.0), student='head', teacher='head')]


# ------------------------------------------------------------------ taps
class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        a = self.relu(self.conv(x))
        return self.relu(a * 2), a + 1


def test_taps_select_call_input_and_tuple_element():
    model = Shared()
    taps = [Tap.parse(dict(module='relu', call=1)), Tap.parse(dict(module='relu', io='input', call=1)),
            Tap.parse('conv'), Tap.parse(dict(module='', index=1))]
    recorder = FeatureRecorder(model, taps, 'student')
    x = torch.randn(1, 2, 3, 3)
    out, _ = model(x)
    a = torch.relu(model.conv(x))
    torch.testing.assert_close(recorder.get(taps[0]), out)
    torch.testing.assert_close(recorder.get(taps[1]), a * 2)
    torch.testing.assert_close(recorder.get(taps[2]), model.conv(x))
    torch.testing.assert_close(recorder.get(taps[3]), a + 1)  # element 1 of the model's tuple output


def test_unknown_module_lists_closest_names():
    model = MODELS.build(STUDENT)
    with pytest.raises(ValueError, match=r"student has no module 'backbone\.layer5'.*backbone\.layer4"):
        FeatureRecorder(model, [Tap.parse('backbone.layer5')], 'student')


def test_tuple_output_without_index_is_an_error():
    model = MODELS.build(STUDENT)
    recorder = FeatureRecorder(model, [Tap.parse(dict(module='backbone', index=3))], 'student')
    model(batch()[0])
    assert recorder.get(Tap.parse(dict(module='backbone', index=3))).shape[1] == 64
    FeatureRecorder(model, [Tap.parse('backbone')], 'student')
    with pytest.raises(ValueError, match=r"tap 'backbone' gives a tuple of 4 tensors.*index=i"):
        model(batch()[0])


def test_taps_survive_in_place_updates():
    # mmdet's Bottleneck: out = norm3(conv3(.)); out += identity; relu(out) with an in-place ReLU
    # that is called three times. Tap the pre-ReLU sum (its third call's input) and norm3's output.
    from mmdet.models.backbones.resnet import Bottleneck
    block = Bottleneck(16, 4).eval()
    taps = [Tap.parse(dict(module='relu', io='input', call=2)), Tap.parse('bn3')]
    recorder = FeatureRecorder(block, taps, 'teacher')
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        out = block(x)
        pre_sum = block.bn3(block.conv3(block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))))
    torch.testing.assert_close(recorder.get(taps[1]), pre_sum)
    torch.testing.assert_close(recorder.get(taps[0]), pre_sum + x)
    torch.testing.assert_close(out, torch.relu(pre_sum + x))


def test_tap_on_a_module_that_did_not_run():
    model = MODELS.build(STUDENT)
    recorder = FeatureRecorder(model, [Tap.parse(dict(module='backbone.layer1', call=1))], 'teacher')
    model(batch()[0])
    with pytest.raises(ValueError, match=r'ran 1 time\(s\).*call=1 does not exist'):
        recorder.get(Tap.parse(dict(module='backbone.layer1', call=1)))


# ------------------------------------------------------------------ teacher
def test_teacher_loads_and_freezes(teacher_checkpoint):
    teacher = build_teacher(dict(model=TEACHER, checkpoint=teacher_checkpoint))
    saved = torch.load(teacher_checkpoint)['state_dict']
    assert not teacher.training and all(not m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, saved[key])


def test_teacher_missing_file_and_strict_keys(tmp_path, teacher_checkpoint):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        build_teacher(dict(model=TEACHER, checkpoint=str(tmp_path / 'nowhere.pth')))
    with pytest.raises(FileNotFoundError, match='missing_config.py'):
        build_teacher(dict(config=str(tmp_path / 'missing_config.py'), checkpoint=teacher_checkpoint))
    partial = torch.load(teacher_checkpoint)['state_dict']
    partial.pop('head.weight')
    partial['extra.weight'] = torch.zeros(1)
    torch.save(dict(state_dict=partial), tmp_path / 'partial.pth')
    with pytest.raises(RuntimeError, match=r'head\.weight'):
        build_teacher(dict(model=TEACHER, checkpoint=str(tmp_path / 'partial.pth'), strict=True))
    with pytest.raises(RuntimeError, match=r'head\.weight'):  # strict by default
        build_teacher(dict(model=TEACHER, checkpoint=str(tmp_path / 'partial.pth')))
    build_teacher(dict(model=TEACHER, checkpoint=str(tmp_path / 'partial.pth'), strict=False))  # logged


def test_teacher_from_config_file(tmp_path, teacher_checkpoint):
    config = tmp_path / 'teacher_cfg.py'
    Config(dict(model=TEACHER)).dump(str(config))
    teacher = build_teacher(dict(config=str(config), checkpoint=teacher_checkpoint))
    assert teacher.head.out_features == 4


def test_different_teacher_normalisation_warns(teacher_checkpoint):
    warnings = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        MODELS.build(dict(type='Distiller', student=STUDENT,
                          teacher=dict(model=classifier(16, mean=(100., 110., 120.)), checkpoint=teacher_checkpoint),
                          distill=nst_at_terms()[:1]))
    finally:
        logger.removeHandler(handler)
    assert any('teacher data_preprocessor normalises differently' in w and
               'mean: student [128.0, 128.0, 128.0] vs teacher [100.0, 110.0, 120.0]' in w for w in warnings)


# ------------------------------------------------------------------ both front doors
@pytest.mark.numerics
def test_hook_and_wrapper_give_the_same_losses(teacher_checkpoint):
    torch.manual_seed(0)
    distiller = MODELS.build(dict(type='Distiller', student=STUDENT,
                                  teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=nst_at_terms()))
    student = copy.deepcopy(distiller.student)
    hook = DistillationHook(teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=nst_at_terms())
    hook.before_run(types.SimpleNamespace(model=student))
    MessageHub.get_current_instance().update_info('iter', 0)

    inputs, samples = batch()
    distiller.train()
    student.train()
    via_wrapper = distiller(inputs, samples, mode='loss')
    via_hook = student(inputs=inputs, data_samples=samples, mode='loss')
    assert set(via_wrapper) == set(via_hook) == {'loss_cls', 'loss_nst', 'loss_at', 'loss_fsp_12', 'loss_kd'}
    for key in via_wrapper:
        torch.testing.assert_close(via_wrapper[key], via_hook[key])
        assert via_wrapper[key] > 0
    # Outside loss mode the hook adds nothing and records nothing.
    assert student(inputs=inputs, mode='tensor').shape == (4, 4)
    assert not hook.engine.student_taps.values


def test_distiller_takes_a_config_level_data_preprocessor(teacher_checkpoint):
    # The runner passes a config's top-level data_preprocessor to the model: it becomes the student's.
    student = {k: v for k, v in STUDENT.items() if k != 'data_preprocessor'}
    distiller = MODELS.build(dict(type='Distiller', student=student, distill=nst_at_terms()[:1],
                                  teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                                  data_preprocessor=STUDENT['data_preprocessor']))
    assert distiller.data_preprocessor is distiller.student.data_preprocessor
    assert distiller.data_preprocessor.mean.flatten().tolist() == [128.0, 128.0, 128.0]


def test_hook_rejects_connectors(teacher_checkpoint):
    hook = DistillationHook(teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=[
        dict(loss=dict(type='mmkd.FitNetLoss'), student='backbone.layer4', teacher='backbone.layer4',
             connector=dict(type='mmkd.ConvConnector', in_channels=64, out_channels=128))])
    with pytest.raises(ValueError, match=r"connector.*mmkd\.Distiller"):
        hook.before_run(types.SimpleNamespace(model=MODELS.build(STUDENT)))


def test_shape_mismatch_names_term_and_shapes(teacher_checkpoint):
    distiller = MODELS.build(dict(type='Distiller', student=STUDENT,
                                  teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=[
                                      dict(loss=dict(type='mmkd.FitNetLoss'), student='backbone.layer4',
                                           teacher='backbone.layer4')]))
    MessageHub.get_current_instance().update_info('iter', 0)
    with pytest.raises(ValueError, match=r"term 'fitnet'.*backbone\.layer4.*\(4, 64, 2, 2\).*\(4, 128, 2, 2\).*connector"):
        distiller(*batch(), mode='loss')


@pytest.mark.slow
def test_fitnet_connector_trains_saves_and_student_extracts(tmp_path, teacher_checkpoint):
    model = dict(type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                 distill=[dict(loss=dict(type='mmkd.FitNetLoss'), student='backbone.layer3', teacher='backbone.layer3',
                               connector=dict(type='mmkd.ConvConnector', in_channels=32, out_channels=64))])
    runner = Runner.from_cfg(runner_cfg(tmp_path, model, max_iters=2))
    connector = runner.model.connectors['fitnet']
    before = connector.conv.weight.detach().clone()
    toy_parts.RecordLossesHook.records = []
    runner.train()
    optimizer_params = {id(p) for group in runner.optim_wrapper.optimizer.param_groups for p in group['params']}
    assert all(id(p) in optimizer_params for p in connector.parameters())
    assert not any(id(p) in optimizer_params for p in runner.model.teacher.parameters())
    assert not torch.equal(before, connector.conv.weight)  # trained
    inputs, samples = batch()
    # The runner puts the model on the GPU where there is one.
    losses = runner.model(inputs.to(connector.conv.weight.device), samples, mode='loss')
    losses['loss_fitnet'].backward()
    assert connector.conv.weight.grad.abs().sum() > 0

    saved = torch.load(tmp_path / 'work' / 'iter_2.pth')['state_dict']
    assert 'connectors.fitnet.conv.weight' in saved
    assert not any(k.startswith('teacher') or k.startswith('engine') for k in saved)

    student_ckpt = tmp_path / 'student.pth'
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'extract_student.py'), str(tmp_path / 'work' / 'iter_2.pth'),
                    str(student_ckpt)], check=True, capture_output=True)
    backbone = MODELS.build(dict(type='ResNet', depth=18, base_channels=8,
                                 init_cfg=dict(type='Pretrained', checkpoint=str(student_ckpt), prefix='backbone.')))
    backbone.init_weights()
    trained = runner.model.student.backbone.state_dict()
    assert set(backbone.state_dict()) == set(trained)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, trained[key].cpu()), key


def test_extract_student_refuses_non_distiller_checkpoint():
    with pytest.raises(ValueError, match='not a mmkd.Distiller checkpoint'):
        extract_student(dict(state_dict={'backbone.conv1.weight': torch.zeros(1)}))


# ------------------------------------------------------------------ schedules
@pytest.mark.slow
def test_stop_at_iteration_skips_the_teacher(tmp_path, teacher_checkpoint):
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                distill=[dict(loss=dict(type='mmkd.NSTLoss'), student='backbone.layer4', teacher='backbone.layer4',
                              schedule=dict(stop=2)),
                         dict(loss=dict(type='mmkd.ATLoss'), student='backbone.layer3', teacher='backbone.layer3',
                              schedule=dict(warmup=2, stop=3))])
    runner, records = train(runner_cfg(tmp_path, STUDENT, max_iters=4, hooks=[hook]))
    distill_hook = next(h for h in runner.hooks if isinstance(h, DistillationHook))
    assert distill_hook.engine.teacher_calls == 3
    assert [sorted(k for k in r if k.startswith('loss_')) for r in records] == [
        ['loss_at', 'loss_cls', 'loss_nst'], ['loss_at', 'loss_cls', 'loss_nst'], ['loss_at', 'loss_cls'], ['loss_cls']]
    saved = torch.load(tmp_path / 'work' / 'iter_4.pth')['state_dict']
    assert set(saved) == set(runner.model.state_dict())
    teacher = torch.load(teacher_checkpoint)['state_dict']
    for key, value in distill_hook.engine.teacher.state_dict().items():
        assert torch.equal(value.cpu(), teacher[key]), key


@pytest.mark.slow
def test_two_stage_switch_survives_resume(tmp_path, teacher_checkpoint):
    model = dict(type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                 two_stage=dict(switch=3),
                 distill=[dict(loss=dict(type='mmkd.FitNetLoss'), student='backbone.layer3', teacher='backbone.layer3',
                               connector=dict(type='mmkd.ConvConnector', in_channels=32, out_channels=64)),
                          dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head', stage=2)])
    _, first = train(runner_cfg(tmp_path, model, max_iters=2))
    _, second = train(runner_cfg(tmp_path, model, max_iters=5, resume=True))
    assert [r['iter'] for r in first + second] == [0, 1, 2, 3, 4]
    for record in first + second:
        if record['iter'] < 3:  # stage 1: the hint alone trains the student
            assert record['loss_cls'] == 0 and 'loss_fitnet' in record and 'loss_kd' not in record
        else:
            assert record['loss_cls'] > 0 and 'loss_fitnet' not in record and 'loss_kd' in record


def test_schedule_factors():
    from mmkd.distill import Progress, TermSchedule, TwoStage
    warm = TermSchedule(warmup=4, stop=6)
    assert [warm.factor(Progress(iter=i, epoch=0)) for i in range(7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.0]
    by_epoch = TermSchedule(stop=2, by_epoch=True)
    assert by_epoch.factor(Progress(iter=100, epoch=1)) == 1.0 and by_epoch.factor(Progress(iter=0, epoch=2)) == 0.0
    assert TwoStage(switch=3, by_epoch=True).stage(Progress(iter=999, epoch=2)) == 1
    with pytest.raises(ValueError, match='warmup and stop must be >= 0'):
        TermSchedule(warmup=-1)


@pytest.mark.numerics
def test_hook_under_autocast(teacher_checkpoint):
    """AmpOptimWrapper (GPU-only in mmengine) runs train_step inside autocast: the teacher must run in
    the same context and the terms stay finite float32."""
    student = MODELS.build(STUDENT)
    hook = DistillationHook(teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=nst_at_terms())
    hook.before_run(types.SimpleNamespace(model=student))
    teacher_dtypes = []
    hook.engine.teacher.backbone.layer4.register_forward_hook(lambda m, i, o: teacher_dtypes.append(o.dtype))
    MessageHub.get_current_instance().update_info('iter', 0)
    student.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = student(*batch(), mode='loss')
    assert teacher_dtypes == [torch.bfloat16]
    for key in ('loss_nst', 'loss_at', 'loss_fsp_12', 'loss_kd'):
        assert losses[key].dtype == torch.float32 and torch.isfinite(losses[key]) and losses[key] > 0
    sum(losses.values()).backward()


@pytest.mark.numerics
def test_distiller_is_the_student_outside_training(teacher_checkpoint):
    distiller = MODELS.build(dict(type='Distiller', student=STUDENT,
                                  teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=nst_at_terms()))
    distiller.eval()
    inputs, samples = batch()
    predictions = distiller(inputs, samples, mode='predict')
    torch.testing.assert_close(torch.stack([p.pred_score for p in predictions]),
                               distiller.student(inputs, mode='tensor').softmax(dim=1))
    assert distiller.engine.teacher_calls == 0


# ------------------------------------------------------------------ gradient-based AT
@pytest.mark.numerics
def test_grad_at_uses_double_backprop(teacher_checkpoint):
    distiller = MODELS.build(dict(type='Distiller', student=STUDENT,
                                  teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                                  distill=[dict(loss=dict(type='mmkd.GradATLoss', loss_weight=10.0))]))
    MessageHub.get_current_instance().update_info('iter', 0)
    distiller.train()
    inputs, samples = batch()
    losses = distiller(inputs, samples, mode='loss')

    x = inputs.clone().requires_grad_()
    student_grad, = torch.autograd.grad(distiller.student(x, samples, mode='loss')['loss_cls'], x)
    x = inputs.clone().requires_grad_()
    teacher_grad, = torch.autograd.grad(distiller.teacher(x, samples, mode='loss')['loss_cls'], x)
    expected = 10.0 / 2 * (student_grad - teacher_grad).flatten(1).norm(dim=1).mean()
    torch.testing.assert_close(losses['loss_grad_at'], expected)

    losses['loss_grad_at'].backward()
    grads = [p.grad for p in distiller.student.backbone.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0


# ------------------------------------------------------------------ mmdet detector and torchrun
@pytest.mark.slow
def test_hook_on_unmodified_faster_rcnn_config(tmp_path, coco_tiny):
    import mmdet
    base = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'faster_rcnn', 'faster-rcnn_r50_fpn_1x_coco.py')
    teacher_cfg = Config.fromfile(base)
    teacher_cfg.model.backbone.init_cfg = None
    teacher = MODELS.build(teacher_cfg.model)
    torch.save(dict(state_dict=teacher.state_dict()), tmp_path / 'frcnn_teacher.pth')

    cfg = Config.fromfile(base)
    cfg.merge_from_dict(coco_tiny)
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(tmp_path / 'work')
    cfg.custom_imports = dict(imports=['mmkd', 'toy_parts'], allow_failed_imports=False)
    cfg.custom_hooks = [
        dict(type='mmkd.DistillationHook', teacher=dict(config=base, checkpoint=str(tmp_path / 'frcnn_teacher.pth')),
             distill=[dict(loss=dict(type='mmkd.NSTLoss', kernel='poly', loss_weight=50.0),
                           student='backbone.layer4', teacher='backbone.layer4'),
                      dict(loss=dict(type='mmkd.ATLoss', loss_weight=100.0),
                           student=dict(module='neck', index=0), teacher=dict(module='neck', index=0))]),
        dict(type='mmkd.RecordLossesHook')]
    toy_parts.RecordLossesHook.records = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    records = toy_parts.RecordLossesHook.records
    assert len(records) == 3
    for record in records:
        assert record['loss_nst'] > 0 and record['loss_at'] > 0 and 'loss_rpn_cls' in record
    hook = next(h for h in runner.hooks if isinstance(h, DistillationHook))
    for key, value in hook.engine.teacher.state_dict().items():
        assert torch.equal(value.cpu(), teacher.state_dict()[key]), key
    saved = torch.load(tmp_path / 'work' / 'iter_3.pth')['state_dict']
    assert set(saved) == set(runner.model.state_dict())


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, teacher_checkpoint):
    """2 processes with half the batch each train as 1 with the whole batch: the same losses, and the
    same gradient shares (measured on the gradients averaged over the ranks, as DDP applies them)."""
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                distill=nst_at_terms(), grad_share=dict(interval=1))

    def run(nproc, batch_size, name):
        out = tmp_path / name
        out.mkdir()
        cfg = runner_cfg(tmp_path, STUDENT, max_iters=3, hooks=[hook])
        cfg.work_dir = str(out)
        cfg.custom_hooks[-1] = dict(type='RecordLossesHook', out_dir=str(out))
        cfg.train_dataloader.batch_size = batch_size
        cfg.custom_imports = dict(imports=['mmkd', 'toy_parts'], allow_failed_imports=False)
        cfg.dump(str(out / 'config.py'))
        env = dict(os.environ, PYTHON=sys.executable, PORT=str(29500 + os.getpid() % 1000 + nproc),
                   PYTHONPATH=osp.join(REPO, 'tests', 'fixtures'), OMP_NUM_THREADS='1',
                   CUDA_VISIBLE_DEVICES='')  # CPU processes over gloo, also on a machine with one GPU
        if nproc == 1:
            command = [sys.executable, osp.join(REPO, 'tools', 'train.py'), str(out / 'config.py')]
        else:
            command = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), str(out / 'config.py'), str(nproc)]
        proc = subprocess.run(command, env=env, cwd=str(tmp_path), capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-4000:]
        ranks = [[json.loads(line) for line in open(out / f'losses_rank{r}.jsonl')] for r in range(nproc)]
        scalars, = glob.glob(str(out / '*' / 'vis_data' / 'scalars.json'))   # rank 0 writes them
        shares = [json.loads(line) for line in open(scalars) if 'grad_share_nst' in line]
        return ranks, shares

    (single, ), single_shares = run(1, 4, 'single')
    (rank0, rank1), ddp_shares = run(2, 2, 'ddp')
    assert len(single) == len(rank0) == len(rank1) == 3
    for one, a, b in zip(single, rank0, rank1):
        for key in ('loss_cls', 'loss_nst', 'loss_at', 'loss_fsp_12', 'loss_kd'):
            # Each rank logs the mean over its half of the global batch.
            assert abs(one[key] - (a[key] + b[key]) / 2) <= 1e-4 * abs(one[key]) + 1e-7, (key, one, a, b)
    assert [r['step'] for r in single_shares] == [r['step'] for r in ddp_shares] == [1, 2, 3]
    for one, two in zip(single_shares, ddp_shares):
        for key in ('grad_share_nst', 'grad_share_at', 'grad_share_fsp_12', 'grad_share_kd'):
            assert two[key] == pytest.approx(one[key], rel=1e-4), (key, one, two)


@pytest.mark.slow
def test_two_processes_train_past_the_end_of_a_connector_term(tmp_path, teacher_checkpoint):
    """FitNet's connector trains in two_stage's stage 1 only: in stage 2 no loss reaches it, and DDP
    must still find every parameter's gradient (tools/dist_train.sh, 2 processes, gloo)."""
    model = dict(type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                 two_stage=dict(switch=2),
                 distill=[dict(loss=dict(type='mmkd.FitNetLoss'), student='backbone.layer3', teacher='backbone.layer3',
                               connector=dict(type='mmkd.ConvConnector', in_channels=32, out_channels=64), stage=1),
                          dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head', stage=2)])
    out = tmp_path / 'ddp'
    out.mkdir()
    cfg = runner_cfg(tmp_path, model, max_iters=4)
    cfg.work_dir = str(out)
    cfg.custom_hooks[-1] = dict(type='RecordLossesHook', out_dir=str(out))
    cfg.train_dataloader.batch_size = 2
    cfg.custom_imports = dict(imports=['mmkd', 'toy_parts'], allow_failed_imports=False)
    cfg.dump(str(out / 'config.py'))
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29700 + os.getpid() % 1000),
               PYTHONPATH=osp.join(REPO, 'tests', 'fixtures'), OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), str(out / 'config.py'), '2'],
                          env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rank in range(2):
        records = [json.loads(line) for line in open(out / f'losses_rank{rank}.jsonl')]
        assert [r['iter'] for r in records] == [0, 1, 2, 3]
        assert all(r['loss_cls'] == 0 and r['loss_fitnet'] > 0 for r in records[:2])   # stage 1: hints
        assert all(r['loss_cls'] > 0 and r['loss_kd'] > 0 and r.get('loss_fitnet', 0) == 0 for r in records[2:])
    assert (out / 'iter_4.pth').is_file()


def calls_of(model, names):
    """The modules of ``names`` that start running (forward pre-hooks)."""
    calls = []
    for name in names:
        dict(model.named_modules())[name].register_forward_pre_hook(lambda m, i, name=name: calls.append(name))
    return calls


def test_teacher_runs_only_to_its_deepest_tap(teacher_checkpoint):
    """Taps on layer2 only: the teacher's layer3 and layer4 never run, and the tapped values equal a
    full forward's; a KD term (the head) runs it all."""
    student = MODELS.build(STUDENT)
    terms = [dict(loss=dict(type='mmkd.ATLoss'), student='backbone.layer2', teacher='backbone.layer2')]
    hook = DistillationHook(teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=terms)
    hook.before_run(types.SimpleNamespace(model=student))
    teacher = hook.engine.teacher
    calls = calls_of(teacher, ['backbone.layer2', 'backbone.layer3', 'backbone.layer4', 'head'])
    inputs = student.data_preprocessor(dict(inputs=batch()[0]), False)['inputs']
    hook.engine.run_teacher(inputs)
    assert calls == ['backbone.layer2']
    recorded = hook.engine.teacher_taps.get(Tap('backbone.layer2'))
    with torch.no_grad():
        full = teacher.backbone(inputs)
    assert torch.equal(recorded, full[1])   # out_indices (0, 1, 2, 3): layer2 is the second

    kd = [dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head')]
    hook = DistillationHook(teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=kd)
    hook.before_run(types.SimpleNamespace(model=MODELS.build(STUDENT)))
    calls = calls_of(hook.engine.teacher, ['backbone.layer4', 'head'])
    hook.engine.run_teacher(inputs)
    assert calls == ['backbone.layer4', 'head']


# bf16 keeps 8 significant bits: rounding to it moves a value by at most u = 2**-8 relative. A bf16
# teacher rounds the output of each of its ~20 layers (convs, BN, ReLU, residual adds) with
# independent errors, so its taps are off by about u * sqrt(20) ~ 4.5u; the terms are smooth
# functions of the (normalised) taps and inherit that. Criterion: every term within 8u (3.1 %) of the
# fp32 teacher's for each seed. Measured 2026-12-05 (AMD EPYC, 7 seeds): at most 2.7u. A layout or
# precision fault (a tap read in the wrong memory format, a term computed in bf16) is off by O(1).
BF16_UNIT_ROUNDOFF = 2.0 ** -8


@pytest.mark.numerics
@pytest.mark.parametrize('seed', range(4))
def test_teacher_precision_and_layout_options(tmp_path, seed):
    """teacher=dict(precision='bf16', channels_last=True): the teacher's taps come out in bf16 and
    channels_last, the terms are float32 and within bf16's rounding bound (above) of the fp32 teacher's."""
    torch.manual_seed(100 + seed)
    checkpoint = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=MODELS.build(TEACHER).state_dict()), checkpoint)
    inputs = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    samples = [BaseDataElement(gt_label=torch.tensor(i % 4)) for i in range(4)]
    losses = {}
    for precision, channels_last in (('fp32', False), ('bf16', True)):
        torch.manual_seed(seed)
        student = MODELS.build(STUDENT)
        teacher = dict(model=TEACHER, checkpoint=checkpoint, precision=precision, channels_last=channels_last)
        hook = DistillationHook(teacher=teacher, distill=nst_at_terms())
        hook.before_run(types.SimpleNamespace(model=student))
        MessageHub.get_current_instance().update_info('iter', 0)
        seen = []
        hook.engine.teacher.backbone.layer4.register_forward_hook(lambda m, i, o: seen.append(o))
        student.train()
        losses[precision] = student(inputs, samples, mode='loss')
        assert seen[0].dtype == (torch.bfloat16 if precision == 'bf16' else torch.float32)
        assert seen[0].is_contiguous(memory_format=torch.channels_last) == channels_last
    for key in ('loss_nst', 'loss_at', 'loss_fsp_12', 'loss_kd'):
        assert losses['bf16'][key].dtype == torch.float32
        torch.testing.assert_close(losses['bf16'][key], losses['fp32'][key], rtol=8 * BF16_UNIT_ROUNDOFF, atol=0)


def test_teacher_precision_names_the_choices(teacher_checkpoint):
    with pytest.raises(ValueError, match="teacher precision='half'.*'bf16'"):
        DistillationHook(teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint, precision='half'),
                         distill=nst_at_terms()).before_run(types.SimpleNamespace(model=MODELS.build(STUDENT)))


def test_hook_removes_its_taps_after_the_run(tmp_path, teacher_checkpoint):
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                distill=nst_at_terms())
    runner, _ = train(runner_cfg(tmp_path, STUDENT, max_iters=1, hooks=[hook]))
    distill_hook = next(h for h in runner.hooks if isinstance(h, DistillationHook))
    for model in (runner.model, distill_hook.engine.teacher):
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_hook_needs_no_teacher_to_test_and_detaches_when_training_raises(tmp_path, teacher_checkpoint):
    """runner.test() builds no teacher (its checkpoint may be elsewhere); a training run that raises
    leaves no distillation hooks on the student."""
    missing = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=str(tmp_path / 'gone.pth')),
                   distill=nst_at_terms(), teacher_check=None)
    loader = dict(batch_size=4, num_workers=0, dataset=dict(type='ToyClassificationDataset'),
                  sampler=dict(type='DefaultSampler', shuffle=False))
    cfg = runner_cfg(tmp_path, STUDENT, hooks=[missing], test_dataloader=loader, test_cfg=dict(type='TestLoop'),
                     test_evaluator=dict(type='Accuracy', topk=(1,)))
    metrics = Runner.from_cfg(cfg).test()
    assert 'accuracy/top1' in metrics

    class Boom(Exception):
        pass

    class FailingHook(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            raise Boom()

    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                distill=nst_at_terms(), teacher_check=None)
    runner = Runner.from_cfg(runner_cfg(tmp_path, STUDENT, max_iters=2, hooks=[hook]))
    runner.register_hook(FailingHook())
    with pytest.raises(Boom):
        runner.train()
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in runner.model.modules())


@pytest.mark.parametrize('term, message', [
    # FSP takes a pair of taps on each side.
    (dict(loss=dict(type='mmkd.FSPLoss'), student='backbone.layer2', teacher='backbone.layer2'),
     r"\('fsp'\): FSPLoss.forward\(student_first, student_second, teacher_first, teacher_second\) takes 2 "
     r"student and 2 teacher tap\(s\)"),
    # KD takes one logits tap on each side.
    (dict(loss=dict(type='mmkd.KDLoss'), student=('head', 'backbone.layer4'), teacher=('head', 'backbone.layer4')),
     r"\('kd'\): KDLoss.forward\(student_logits, teacher_logits\) takes 1 student and 1 teacher tap\(s\)"),
    (dict(loss=dict(type='mmkd.KDLoss'), student='head'),
     r"KDLoss.forward\(student_logits, teacher_logits\) takes 1 student and 1 teacher tap\(s\).*teacher=None"),
    # Input-gradient terms take no taps.
    (dict(loss=dict(type='mmkd.GradATLoss'), student='backbone.layer1', teacher='backbone.layer1'),
     r"\('grad_at'\): GradATLoss.forward\(student_grad, teacher_grad\) takes the task losses' input "
     r"gradients, not taps"),
])
def test_wrong_tap_loss_pairing_fails_at_build_time(teacher_checkpoint, term, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type='Distiller', student=STUDENT,
                          teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint), distill=[term]))


def test_a_loss_whose_forward_names_no_student_inputs_is_refused(teacher_checkpoint):
    @MODELS.register_module(force=True)
    class UnnamedLoss(nn.Module):
        def forward(self, a, b):
            return (a - b).sum()

    with pytest.raises(TypeError, match=r'UnnamedLoss.forward\(a, b\): a distillation loss names its inputs'):
        MODELS.build(dict(type='Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                          distill=[dict(loss=dict(type='UnnamedLoss'), student='head', teacher='head')]))


def test_logits_term_on_a_feature_map_names_term_and_shapes(teacher_checkpoint):
    distiller = MODELS.build(dict(type='Distiller', student=STUDENT,
                                  teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                                  distill=[dict(loss=dict(type='mmkd.KDLoss'), student='backbone.layer4',
                                                teacher='backbone.layer4')]))
    MessageHub.get_current_instance().update_info('iter', 0)
    distiller.train()
    with pytest.raises(ValueError, match=r"term 'kd' \(KDLoss: student backbone.layer4.*logits of the same "
                                         r"shape \(N, K\); got student \(4, 64, 2, 2\)"):
        distiller(*batch(), mode='loss')


@pytest.mark.slow
def test_two_nodes_train_and_resume_after_one_is_killed(tmp_path, teacher_checkpoint):
    """tools/dist_train.sh with NNODES=2: two launches of one process each (gloo, rendezvous on
    localhost). Node 1 is killed mid-run; node 0 exits with an error naming the lost peer within the
    timeout; relaunched with --resume, both continue from the last checkpoint to the end."""
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                distill=nst_at_terms())
    out = tmp_path / 'nodes'
    out.mkdir()
    cfg = runner_cfg(tmp_path, STUDENT, max_iters=1000, hooks=[hook, dict(type='PaceHook', seconds=0.2)])
    cfg.work_dir = str(out)
    cfg.custom_hooks[-1] = dict(type='RecordLossesHook', out_dir=str(out))
    cfg.train_dataloader.batch_size = 2
    cfg.env_cfg.dist_cfg.timeout = 60
    cfg.custom_imports = dict(imports=['mmkd', 'toy_parts'], allow_failed_imports=False)
    config = str(out / 'config.py')
    cfg.dump(config)
    port = str(29900 + os.getpid() % 97)

    def launch(node_rank, *args):
        env = dict(os.environ, PYTHON=sys.executable, NNODES='2', NODE_RANK=str(node_rank), MASTER_ADDR='127.0.0.1',
                   PORT=port, PYTHONPATH=osp.join(REPO, 'tests', 'fixtures'), OMP_NUM_THREADS='1',
                   CUDA_VISIBLE_DEVICES='')
        log = open(tmp_path / f'node{node_rank}_{len(args)}.log', 'w')
        return subprocess.Popen(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '1', *args], env=env,
                                cwd=str(tmp_path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill_node(node):
        """What a node's failure does: its torchrun agent and the workers, which torchrun starts in
        sessions of their own (killing the agent alone leaves them training)."""
        subprocess.run(['pkill', '-KILL', '-P', str(node.pid)], check=False)
        node.kill()
        node.wait()

    nodes = [launch(0), launch(1)]
    try:
        deadline = time.monotonic() + 300
        while not (out / 'iter_4.pth').exists():
            assert time.monotonic() < deadline and all(n.poll() is None for n in nodes), \
                (tmp_path / 'node0_0.log').read_text()[-3000:]
            time.sleep(0.5)
        kill_node(nodes[1])
        started = time.monotonic()
        assert nodes[0].wait(timeout=180) != 0
        waited = time.monotonic() - started
    finally:
        for node in nodes:
            if node.poll() is None:
                kill_node(node)
    log0 = (tmp_path / 'node0_0.log').read_text()
    last = open(out / 'last_checkpoint').read().strip()
    assert 'Connection closed by peer' in log0 and waited < 120, (waited, log0[-3000:])
    assert ('another process of this run stopped or stopped answering' in log0
            and f'The last checkpoint is {last}: relaunch every node with the same command and --resume' in log0)

    done = int(osp.basename(last)[len('iter_'):-len('.pth')])
    port = str(int(port) + 1)
    nodes = [launch(node, '--resume', '--cfg-options', f'train_cfg.max_iters={done + 2}') for node in (0, 1)]
    try:
        assert [node.wait(timeout=300) for node in nodes] == [0, 0], (tmp_path / 'node0_3.log').read_text()[-3000:]
    finally:
        for node in nodes:
            if node.poll() is None:
                kill_node(node)
    assert f'resumed epoch: 0, iter: {done}' in (tmp_path / 'node0_3.log').read_text()
    assert (out / f'iter_{done + 2}.pth').is_file()
    for rank in (0, 1):
        records = [json.loads(line) for line in open(out / f'losses_rank{rank}.jsonl')]
        assert [r['iter'] for r in records[-2:]] == [done, done + 1], rank


@pytest.fixture
def slurm_cluster(tmp_path):
    from slurm_cluster import SlurmCluster, missing_programs
    missing = missing_programs()
    if missing:
        pytest.skip(f'Slurm is not installed here (no {", ".join(missing)}): `apt-get install slurm-wlm munge`, '
                    'as .ci/run does where the package index is reachable')
    with SlurmCluster(tmp_path / 'slurm') as cluster:
        yield cluster


@pytest.mark.slow
def test_slurm_scripts_on_a_real_cluster(tmp_path, teacher_checkpoint, slurm_cluster):
    """tools/slurm_train.sh runs a 2-task CPU job (gloo) to a checkpoint on a real single-node Slurm
    cluster, tools/slurm_test.sh evaluates it, and the README's sbatch example resumes the job."""
    from slurm_cluster import PARTITION, free_port
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher_checkpoint),
                distill=nst_at_terms())
    loader = dict(batch_size=4, num_workers=0, dataset=dict(type='ToyClassificationDataset'),
                  sampler=dict(type='DefaultSampler', shuffle=False))
    work = tmp_path / 'work'
    work.mkdir()
    cfg = runner_cfg(tmp_path, STUDENT, max_iters=4, hooks=[hook], test_dataloader=loader,
                     test_cfg=dict(type='TestLoop'), test_evaluator=dict(type='Accuracy', topk=(1,)))
    cfg.custom_hooks[-1] = dict(type='RecordLossesHook', out_dir=str(work))
    cfg.train_dataloader.batch_size = 2
    cfg.custom_imports = dict(imports=['mmkd', 'toy_parts'], allow_failed_imports=False)
    config = str(tmp_path / 'config.py')
    cfg.dump(config)
    env = slurm_cluster.env(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1', GRES='', PYTHON=sys.executable,
                            MASTER_PORT=str(free_port()), PYTHONPATH=osp.join(REPO, 'tests', 'fixtures'),
                            OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')

    def run(*command):
        proc = subprocess.run(command, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:] + slurm_cluster.log()
        return proc.stdout + proc.stderr

    run('bash', osp.join(REPO, 'tools', 'slurm_train.sh'), PARTITION, 'mmkd-train', config, str(work))
    assert (work / 'iter_4.pth').is_file()
    for rank in (0, 1):   # one world of 2 tasks: each rank trained every iteration
        assert [json.loads(line)['iter'] for line in open(work / f'losses_rank{rank}.jsonl')] == [0, 1, 2, 3]

    out = run('bash', osp.join(REPO, 'tools', 'slurm_test.sh'), PARTITION, 'mmkd-test', config, str(work / 'iter_4.pth'),
              '--work-dir', str(tmp_path / 'test'))
    assert 'accuracy/top1' in out

    log = tmp_path / 'sbatch.log'
    run('sbatch', '--wait', '-p', PARTITION, '--ntasks=2', '--cpus-per-task=1', '-J', 'mmkd-resume', '-o', str(log),
        '--wrap', f'bash {REPO}/tools/slurm_train.sh {PARTITION} mmkd-resume {config} {work} --resume '
                  '--cfg-options train_cfg.max_iters=6')
    assert 'resumed epoch: 0, iter: 4' in log.read_text() and (work / 'iter_6.pth').is_file()
