"""What distillation does, shown: gradient shares, auto weights, the teacher check."""
import glob
import itertools
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import toy_parts
from mmkd.cli import add_distill_diagnostics
from mmkd.distill.gradient_share import AutoWeight
from mmkd.distill.teacher_check import TeacherCheckError
from mmkd.registry import MODELS

RUN_NAMES = itertools.count()
PREPROCESS = dict(type='ImgDataPreprocessor', mean=(128., 128., 128.), std=(64., 64., 64.))
STUDENT = dict(type='ImageClassifier', num_classes=8, in_channels=64, data_preprocessor=PREPROCESS,
               backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(0, 1, 2, 3), norm_eval=True))
#: A linear model of the mean colour: learns ToyColourDataset in a few steps.
COLOUR_TEACHER = dict(type='ImageClassifier', num_classes=8, in_channels=3, backbone=dict(type='ToyIdentity'),
                      data_preprocessor=PREPROCESS)
TEACHER = dict(type='ImageClassifier', num_classes=8, in_channels=128, data_preprocessor=PREPROCESS,
               backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(0, 1, 2, 3), norm_eval=True))


@pytest.fixture(autouse=True)
def mmkd_scope():
    init_default_scope('mmkd')


def save(model, path):
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def nst_kd_terms(**nst):
    return [dict(loss=dict(type='mmkd.NSTLoss', loss_weight=5.0), student='backbone.layer3',
                 teacher='backbone.layer3', **nst),
            dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head')]


def colour_batch(n=8):
    from mmengine.dataset import pseudo_collate
    from mmkd.registry import DATASETS
    dataset = DATASETS.build(dict(type='ToyColourDataset', size=n, seed=3))
    return pseudo_collate([dataset[i] for i in range(n)])


def runner_cfg(tmp_path, model, max_iters=2, hooks=(), train_size=8, val=False, **overrides):
    loader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False))
    cfg = dict(
        model=model, work_dir=str(tmp_path / 'work'), default_scope='mmkd',
        train_dataloader=dict(**loader, dataset=dict(type='ToyColourDataset', size=train_size)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[*hooks, dict(type='RecordLossesHook')],
        log_processor=dict(by_epoch=False), randomness=dict(seed=0),
        experiment_name=f'diag{next(RUN_NAMES)}')
    if val:
        cfg.update(val_dataloader=dict(**loader, dataset=dict(type='ToyColourDataset', size=40, seed=1)),
                   val_cfg=dict(type='ValLoop'), val_evaluator=dict(type='Accuracy', topk=(1,)))
    cfg.update(overrides)
    return Config(cfg)


train = toy_parts.train_recording


def grad_norm(loss, params):
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return math.sqrt(sum(float((g ** 2).sum()) for g in grads if g is not None))


# ------------------------------------------------------------------ gradient share
@pytest.mark.numerics
def test_gradient_share_is_the_ratio_of_gradient_norms(tmp_path):
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    distiller = MODELS.build(dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher),
                                  distill=nst_kd_terms(schedule=dict(warmup=4)), grad_share=dict(interval=2)))
    distiller.train()
    hub = MessageHub.get_current_instance()
    data = distiller.data_preprocessor(colour_batch(), True)
    hub.update_info('iter', 1)   # warm-up factor 2/4 on the NST term
    losses = distiller(**data, mode='loss')
    assert distiller.engine.latest_shares is None   # iteration 1 is not a multiple of the interval
    params = [p for p in distiller.student.parameters() if p.requires_grad]
    hub.update_info('iter', 2)
    losses = distiller(**data, mode='loss')
    shares = distiller.engine.latest_shares
    assert shares['iter'] == 2 and set(shares['shares']) == {'nst', 'kd'}
    for name in ('nst', 'kd'):
        # The share of each term as it trains (its weighted loss: warm-up 3/4 for NST at iter 2), on
        # the parameters it reaches: NST on layer3 does not reach layer4 and the head.
        reached = [p for p, g in zip(params, torch.autograd.grad(losses[f'loss_{name}'], params, retain_graph=True,
                                                                allow_unused=True)) if g is not None]
        assert (len(reached) < len(params)) == (name == 'nst')
        expected = grad_norm(losses[f'loss_{name}'], reached) / grad_norm(losses['loss_cls'], reached)
        assert shares['shares'][name] == pytest.approx(expected, rel=1e-5)
    assert shares['weights'] == {'nst': 0.75, 'kd': 1.0}
    # Measuring neither accumulates gradients nor frees the step's graph.
    assert all(p.grad is None for p in params)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    hub.update_info('iter', 3)   # not a measuring iteration: nothing new
    distiller(**data, mode='loss')
    assert distiller.engine.latest_shares['iter'] == 2


def test_gradient_shares_are_measured_on_the_optimizer_s_scaled_losses(tmp_path, monkeypatch):
    """fp16 AMP scales the loss before backward so that small gradients do not underflow: the shares
    are measured on the losses scaled the same way (the front doors' hooks read the scale from the
    optimizer's GradScaler), and the ratio does not change with the scale."""
    import types
    from mmkd.distill import engine as engine_module
    from mmkd.distill.hook import DistillDiagnosticsHook
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    distiller = MODELS.build(dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher),
                                  distill=nst_kd_terms(), grad_share=dict(interval=1), teacher_check=None))
    distiller.train()
    data = distiller.data_preprocessor(colour_batch(), True)
    MessageHub.get_current_instance().update_info('iter', 0)
    distiller(**data, mode='loss')
    unscaled = dict(distiller.engine.latest_shares['shares'])
    runner = types.SimpleNamespace(model=distiller, optim_wrapper=types.SimpleNamespace(
        loss_scaler=types.SimpleNamespace(get_scale=lambda: 1024.0)))
    DistillDiagnosticsHook().before_train(runner)
    seen = []
    measure = engine_module.gradients
    monkeypatch.setattr(engine_module, 'gradients', lambda loss, params: seen.append(float(loss)) or measure(loss, params))
    losses = distiller(**data, mode='loss')
    assert seen[0] == pytest.approx(1024.0 * float(losses['loss_cls']), rel=1e-6)
    assert distiller.engine.latest_shares['shares'] == pytest.approx(unscaled, rel=1e-5)


def test_gradient_share_logged_by_the_hook_and_written_as_scalars(tmp_path):
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher),
                distill=nst_kd_terms(), grad_share=dict(interval=2), teacher_check=None)
    runner, records = train(runner_cfg(tmp_path, STUDENT, max_iters=3, hooks=[hook]))
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    lines = [line for line in log.splitlines() if 'gradient share' in line]
    assert len(lines) == 2 and 'Iter(train) [1]' in lines[0] and 'Iter(train) [3]' in lines[1]
    scalars = [json.loads(line) for line in open(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))]
    shares = [r for r in scalars if 'grad_share_nst' in r]
    assert [r['step'] for r in shares] == [1, 3]
    assert all(r['grad_share_nst'] > 0 and r['grad_share_kd'] > 0 for r in shares)
    assert len(records) == 3


# ------------------------------------------------------------------ auto weights
def test_auto_weight_arithmetic():
    auto = AutoWeight('nst', share=0.5, iters=3)
    assert auto.current() == 1.0 and not auto.frozen
    auto.add(0.1)
    assert auto.current() == pytest.approx(5.0)
    auto.add(None)          # no task gradient (a hint stage): not counted
    auto.add(0.3)
    assert auto.current() == pytest.approx(0.5 / 0.2)
    auto.add(0.2)
    assert auto.frozen and float(auto.weight) == pytest.approx(0.5 / 0.2)
    auto.add(10.0)          # frozen
    assert auto.current() == pytest.approx(2.5)
    with pytest.raises(RuntimeError, match="'nst'.*no gradient"):
        AutoWeight('nst', share=0.5).add(0.0)


def test_auto_weight_reads_no_tensor_value_per_iteration(monkeypatch):
    """The weight is read every iteration: from Python mirrors, never from the (device) buffers,
    which would wait for the GPU each step."""
    auto = AutoWeight('nst', share=0.5, iters=2)
    auto.add(0.25)
    reads = []
    for name in ('item', '__float__', '__int__', '__bool__'):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, _o=original: reads.append(1) or _o(self))
    for _ in range(3):
        auto.current()
        assert not auto.frozen
    auto.add(0.25)
    reads.clear()
    assert auto.current() == pytest.approx(2.0) and auto.frozen and not reads


def auto_terms(share=0.25, iters=3):
    return [dict(loss=dict(type='mmkd.NSTLoss', loss_weight='auto'), student='backbone.layer3',
                 teacher='backbone.layer3', auto_weight=dict(share=share, iters=iters))]


@pytest.mark.numerics
def test_auto_weight_reaches_its_target_share_and_survives_resume(tmp_path):
    """lr 0 and one repeated batch: every iteration measures the same ratio, so the share measured
    after freezing must be the target exactly; the frozen weight is saved and resumed."""
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    model = dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher),
                 distill=auto_terms(), grad_share=dict(interval=3), teacher_check=None)
    cfg = runner_cfg(tmp_path, model, max_iters=4, hooks=[dict(type='mmkd.DistillDiagnosticsHook')],
                     optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)))
    runner, records = train(cfg)
    auto = runner.model.engine.auto_weights['nst']
    assert auto.frozen and int(auto.count) == 3
    assert runner.model.engine.latest_shares['iter'] == 3
    assert runner.model.engine.latest_shares['shares']['nst'] == pytest.approx(0.25, rel=1e-4)
    state = torch.load(osp.join(runner.work_dir, 'iter_4.pth'), weights_only=True)['state_dict']
    assert float(state['auto_weights.nst.weight']) == pytest.approx(float(auto.weight))
    # Each iteration measures before it weights: with identical ratios, iteration 0 already trains
    # with the final weight.
    assert all(r['loss_nst'] == pytest.approx(records[-1]['loss_nst'], rel=1e-6) for r in records)
    resumed, _ = train(runner_cfg(tmp_path, model, max_iters=6, hooks=[dict(type='mmkd.DistillDiagnosticsHook')],
                                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)), resume=True))
    again = resumed.model.engine.auto_weights['nst']
    assert int(again.count) == 3 and float(again.weight) == float(auto.weight)


def test_checkpoints_during_calibration_hold_finite_values_and_resume_it(tmp_path):
    """Checkpoints every 2 iterations while a 10-iteration calibration runs: each is saved (the
    non-finite guard refuses NaN), and a resumed run continues the count where it stopped."""
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    model = dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher),
                 distill=auto_terms(iters=10), teacher_check=None)
    runner, _ = train(runner_cfg(tmp_path, model, max_iters=4))
    auto = runner.model.engine.auto_weights['nst']
    assert not auto.frozen and int(auto.count) == 4
    state = torch.load(osp.join(runner.work_dir, 'iter_4.pth'), weights_only=True)['state_dict']
    assert all(torch.isfinite(state[f'auto_weights.nst.{k}']) for k in ('weight', 'count', 'ratio_sum'))
    resumed, _ = train(runner_cfg(tmp_path, model, max_iters=6, resume=True))
    again = resumed.model.engine.auto_weights['nst']
    assert int(again.count) == 6 and not again.frozen
    assert float(again.ratio_sum) > float(state['auto_weights.nst.ratio_sum'])


def test_auto_weight_skips_non_finite_measurements():
    auto = AutoWeight('nst', share=0.5, iters=2)
    auto.add(float('inf'))
    auto.add(float('nan'))
    assert auto._count == 0 and auto.current() == 1.0
    auto.add(0.25)
    auto.add(0.25)
    assert auto.frozen and auto.current() == pytest.approx(2.0)
    # The buffers say the same, and a fresh one restores the state from them.
    restored = AutoWeight('nst', share=0.5, iters=2)
    restored.load_state_dict(auto.state_dict())
    assert restored.frozen and restored.current() == pytest.approx(2.0)


def test_auto_weight_through_the_hook_is_kept_in_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=TEACHER, checkpoint=teacher),
                distill=auto_terms(iters=2), teacher_check=None)
    runner, _ = train(runner_cfg(tmp_path, STUDENT, max_iters=2, hooks=[hook]))
    checkpoint = torch.load(osp.join(runner.work_dir, 'iter_2.pth'), weights_only=True)
    weight = float(checkpoint['mmkd_auto_weights']['nst.weight'])
    assert math.isfinite(weight) and weight > 0
    resumed, _ = train(runner_cfg(tmp_path, STUDENT, max_iters=3, hooks=[hook], resume=True))
    engine = next(h for h in resumed.hooks if type(h).__name__ == 'DistillationHook').engine
    assert float(engine.auto_weights['nst'].weight) == weight and int(engine.auto_weights['nst'].count) == 2


@pytest.mark.parametrize('term,match', [
    (dict(loss=dict(type='mmkd.NSTLoss', loss_weight='auto')), r"'auto' goes with auto_weight=dict\(share="),
    (dict(loss=dict(type='mmkd.NSTLoss', loss_weight='auto'), auto_weight=dict(iters=3)), 'share'),
    (dict(loss=dict(type='mmkd.NSTLoss', loss_weight=2.0), auto_weight=dict(share=0.5)), "got loss_weight=2.0"),
    (dict(loss=dict(type='mmkd.NSTLoss', loss_weight='auto'), auto_weight=dict(share=0.0)), 'share > 0'),
])
def test_auto_weight_config_errors(tmp_path, term, match):
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    term = dict(term, student='backbone.layer3', teacher='backbone.layer3')
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher),
                          distill=[term]))


def test_auto_weight_in_a_two_stage_hint_stage_is_refused(tmp_path):
    """Stage 1 scales the task loss to 0: no share to calibrate against; named at build time."""
    torch.manual_seed(0)
    teacher = save(MODELS.build(TEACHER), tmp_path / 'teacher.pth')
    for stage in (1, 'both'):
        term = dict(auto_terms()[0], stage=stage)
        with pytest.raises(ValueError, match=rf"'nst': loss_weight='auto'.*stage 1.*stage={stage!r}"):
            MODELS.build(dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher),
                              distill=[term], two_stage=dict(switch=2)))
    model = MODELS.build(dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=TEACHER, checkpoint=teacher),
                              distill=[dict(auto_terms()[0], stage=2)], two_stage=dict(switch=2)))
    assert 'nst' in model.engine.auto_weights


# ------------------------------------------------------------------ teacher check
@pytest.fixture
def colour_teachers(tmp_path):
    """A random colour teacher (seeded) and the same model trained to 100 % on ToyColourDataset."""
    from mmkd.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    torch.manual_seed(1)
    model = MODELS.build(COLOUR_TEACHER)
    random_path = save(model, tmp_path / 'random_teacher.pth')
    dataset = DATASETS.build(dict(type='ToyColourDataset', size=80, seed=0))
    batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(80)]), True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(100):
        loss = model(**batch, mode='loss')['loss_cls']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return dict(random=random_path, trained=save(model, tmp_path / 'trained_teacher.pth'))


def colour_distiller(checkpoint, **check):
    return dict(type='mmkd.Distiller', student=STUDENT, teacher=dict(model=COLOUR_TEACHER, checkpoint=checkpoint),
                distill=[dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head')],
                teacher_check=dict(strict=True, **check))


def test_teacher_check_stops_a_random_teacher_under_strict(tmp_path, colour_teachers):
    cfg = runner_cfg(tmp_path, colour_distiller(colour_teachers['random']), val=True,
                     hooks=[dict(type='mmkd.DistillDiagnosticsHook')])
    with pytest.raises(TeacherCheckError, match=r'random_teacher\.pth\) scores accuracy/top1 = 0 on the first 32 '
                                                r'validation images \(chance 12\.5, perfect 100\): near chance'):
        train(cfg)
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))   # stopped before the first step


def test_teacher_check_passes_a_trained_teacher(tmp_path, colour_teachers):
    cfg = runner_cfg(tmp_path, colour_distiller(colour_teachers['trained']), val=True,
                     hooks=[dict(type='mmkd.DistillDiagnosticsHook')])
    runner, records = train(cfg)
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    assert 'teacher check passed' in log and 'accuracy/top1 = 100 on the first 32 validation images' in log
    assert len(records) == 2


def test_teacher_check_leaves_the_run_s_random_streams_alone(tmp_path, colour_teachers):
    """Iterating the validation loader draws its workers' base seed from torch's generator: the
    check restores every stream, so a seeded run trains the same with the check on or off."""
    import random
    import numpy as np
    from mmkd.distill.teacher_check import check_teacher
    cfg = runner_cfg(tmp_path, colour_distiller(colour_teachers['trained']), val=True)
    runner = Runner.from_cfg(cfg)
    runner._val_loop = runner.build_val_loop(runner._val_loop)   # as runner.train() does first
    before = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    result = check_teacher(runner, runner.model.teacher, runner.model.student, 'the colour teacher')
    assert result['score'] == 100.0 and not result['near_chance']
    assert torch.equal(torch.random.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]


def test_teacher_check_warns_through_the_hook_without_strict(tmp_path, colour_teachers):
    hook = dict(type='mmkd.DistillationHook', teacher=dict(model=COLOUR_TEACHER, checkpoint=colour_teachers['random']),
                distill=[dict(loss=dict(type='mmkd.KDLoss'), student='head', teacher='head')],
                teacher_check=dict(num_batches=2))
    runner, records = train(runner_cfg(tmp_path, STUDENT, val=True, hooks=[hook]))
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    assert 'WARNING' in log and 'teacher check FAILED' in log and 'first 16 validation images' in log
    assert len(records) == 2   # a warning: training went on


def test_teacher_check_says_when_it_cannot_judge(tmp_path, colour_teachers):
    cfg = runner_cfg(tmp_path, colour_distiller(colour_teachers['random']), hooks=[dict(type='mmkd.DistillDiagnosticsHook')])
    runner, _ = train(cfg)   # no validation loop: nothing to score on, said in the log, not an error
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    assert 'teacher check skipped: the config has no validation loop' in log


def test_teacher_check_scores_a_coco_metric_on_the_images_it_predicted(tmp_path):
    """mmdet's CocoMetric scores against every image of its annotation file: a teacher that predicts
    the ground truth must still score 1.0 on the 4 images the check sees out of 12."""
    import json as json_
    import numpy as np
    from mmengine.model import BaseModel
    from mmengine.structures import InstanceData
    from PIL import Image

    from mmkd.distill.teacher_check import check_teacher

    root = tmp_path / 'coco'
    (root / 'images').mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(root / 'images' / f'{i}.jpg')
        images.append(dict(id=i, file_name=f'{i}.jpg', height=64, width=80))
        x, y = float(rng.integers(0, 30)), float(rng.integers(0, 20))
        # Annotation ids from 1: pycocotools reads id 0 as "no match".
        annotations.append(dict(id=i + 1, image_id=i, category_id=1 + i % 2, bbox=[x, y, 30.0, 25.0],
                                area=750.0, iscrowd=0))
    (root / 'ann.json').write_text(json_.dumps(dict(images=images, annotations=annotations,
                                                    categories=[dict(id=1, name='a'), dict(id=2, name='b')])))

    class GroundTruthDetector(BaseModel):
        def forward(self, inputs, data_samples=None, mode='tensor'):
            raise NotImplementedError

        def val_step(self, data):
            for sample in data['data_samples']:
                gt = sample.gt_instances
                sample.pred_instances = InstanceData(bboxes=gt.bboxes.tensor, labels=gt.labels,
                                                     scores=torch.ones(len(gt.labels)))
            return data['data_samples']

    pipeline = [dict(type='mmdet.LoadImageFromFile'), dict(type='mmdet.LoadAnnotations', with_bbox=True),
                dict(type='mmdet.PackDetInputs')]
    val = dict(val_dataloader=dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                                   dataset=dict(type='mmdet.CocoDataset', data_root=str(root), ann_file='ann.json',
                                                data_prefix=dict(img='images/'), test_mode=True,
                                                metainfo=dict(classes=('a', 'b')), pipeline=pipeline)),
               val_cfg=dict(type='ValLoop'),
               val_evaluator=dict(type='mmdet.CocoMetric', ann_file=str(root / 'ann.json'), metric='bbox'))
    runner = Runner.from_cfg(runner_cfg(tmp_path, STUDENT, **val))
    result = check_teacher(runner, GroundTruthDetector(), runner.model, 'the GT teacher', num_batches=2,
                           strict=True)
    assert result['metric'] == 'coco/bbox_mAP' and result['images'] == 4
    assert result['score'] == pytest.approx(1.0) and not result['near_chance']


def test_train_tool_adds_the_diagnostics_hook_to_distiller_runs():
    cfg = Config(dict(model=dict(type='mmkd.Distiller'), custom_hooks=[]))
    add_distill_diagnostics(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['mmkd.DistillDiagnosticsHook']
    add_distill_diagnostics(cfg)
    assert len(cfg.custom_hooks) == 1
    plain = Config(dict(model=dict(type='FasterRCNN')))
    add_distill_diagnostics(plain)
    assert not plain.get('custom_hooks')
