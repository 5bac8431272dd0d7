"""Distillation pretraining: backbones, datasets, transforms, accuracy and every config in configs/."""
import glob
import itertools
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import toy_parts
from mmkd.checkpoints import convert_torchvision_resnet as convert
from mmkd.checkpoints import extract_student
from mmkd.distill import build_teacher
from mmkd.models import InceptionBN, PreActResNet
from mmkd.registry import DATASETS, METRICS, MODELS, TRANSFORMS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'imagenet', '*.py')) +
                 glob.glob(osp.join(REPO, 'configs', 'cifar', '*.py')))
RUN_NAMES = itertools.count()


@pytest.fixture(autouse=True)
def mmkd_scope():
    init_default_scope('mmkd')


# ------------------------------------------------------------------ backbones
def test_inception_bn_stage_shapes_and_size():
    model = InceptionBN(out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 224, 224))
    # MXNet's pooling rounds down: 112 -> 55 -> 27 -> 14 -> 7 (the paper's in5b tap stays 7 x 7).
    assert [tuple(o.shape[1:]) for o in outs] == [(192, 55, 55), (320, 27, 27), (608, 14, 14), (1024, 7, 7)]
    stem = model.conv1(torch.randn(1, 3, 224, 224))
    assert stem.shape[-1] == 112 and model.pool1(stem).shape[-1] == 55
    with torch.no_grad():
        ceil = InceptionBN(out_indices=(0, 1, 2, 3), ceil_mode=True).eval()(torch.randn(1, 3, 224, 224))
    assert [o.shape[-1] for o in ceil] == [56, 28, 14, 7]
    # BN-Inception: 10.26 M in the backbone, 11.29 M with a 1000-way linear head (README).
    assert sum(p.numel() for p in model.parameters()) == 10_260_224


def test_inception_bn_block_widths_follow_mxnet():
    model = InceptionBN()
    recorded = {}
    for name in ('in3a', 'in3b', 'in3c', 'in4a', 'in4b', 'in4c', 'in4d', 'in4e', 'in5a', 'in5b'):
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: recorded.__setitem__(n, o.shape[1]))
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 224, 224))
    assert recorded == dict(in3a=256, in3b=320, in3c=576, in4a=576, in4b=576, in4c=608, in4d=608, in4e=1056,
                            in5a=1024, in5b=1024)


def test_inception_bn_preact_tap_is_before_relu():
    model = InceptionBN().eval()
    taps = {}
    model.in5b.preact.register_forward_hook(lambda m, i, o: taps.__setitem__('preact', o))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))[-1]
    assert taps['preact'].shape == (2, 1024, 7, 7) and (taps['preact'] < 0).any()
    torch.testing.assert_close(out, taps['preact'].relu())


def test_inception_bn_cifar_variant_and_freezing():
    model = InceptionBN(out_indices=(0, 1, 2, 3), cifar=True, frozen_stages=1, norm_eval=True)
    model.train()
    outs = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(192, 32, 32), (320, 32, 32), (608, 16, 16), (1024, 8, 8)]
    assert not any(p.requires_grad for p in model.in3b.parameters())
    assert all(p.requires_grad for p in model.in3c.parameters())
    assert not model.in4a.branches[0].bn.training  # norm_eval
    with pytest.raises(ValueError, match='out_indices'):
        InceptionBN(out_indices=(4,))


def test_inception_bn_widen_factor():
    model = InceptionBN(out_indices=(0, 1, 2, 3), widen_factor=0.25).eval()
    assert model.out_channels == (48, 80, 152, 256)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == list(model.out_channels)
    assert InceptionBN().out_channels == (192, 320, 608, 1024)


def test_preact_resnet_1001():
    model = PreActResNet(depth=1001)
    assert sum(p.numel() for p in model.parameters()) == 10_325_136
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == 111
    out = model(torch.randn(2, 3, 32, 32))[-1]
    assert out.shape == (2, 256, 8, 8) and (out >= 0).all()
    with pytest.raises(ValueError, match='9n \\+ 2'):
        PreActResNet(depth=100)


def test_preact_bottleneck_stride_placement():
    official, pytorch_style = PreActResNet(depth=164), PreActResNet(depth=164, style='pytorch')
    first = official.layer2[0]  # the stride-2 block of stage 2
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    assert pytorch_style.layer2[0].conv1.stride == (1, 1) and pytorch_style.layer2[0].conv2.stride == (2, 2)
    assert official.layer2[1].conv1.stride == official.layer2[1].conv2.stride == (1, 1)
    assert [p.shape for p in official.parameters()] == [p.shape for p in pytorch_style.parameters()]
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    # The 1x1 stride samples the pre-activated map before the 3x3 sees it: same shapes, other values.
    pytorch_style.load_state_dict(official.state_dict())
    official.eval(), pytorch_style.eval()
    a, b = official(x)[-1], pytorch_style(x)[-1]
    assert a.shape == b.shape == (1, 256, 8, 8) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="style must be 'caffe' or 'pytorch'"):
        PreActResNet(depth=164, style='mxnet')


@pytest.mark.parametrize('depth, blocks, params', [(8, 1, 74_640), (14, 2, 171_856), (26, 4, 366_288),
                                                   (32, 5, 463_504)])
def test_cifar_resnets_of_the_fsp_table(depth, blocks, params):
    from mmkd.models import CifarResNet
    model = CifarResNet(depth=depth, out_indices=(0, 1, 2)).eval()
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == blocks
    # Option A has no shortcut parameters; the same count gives ResNet-20 its known 0.27 M (269,072).
    assert sum(p.numel() for p in model.parameters()) == params
    outs = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    # Option A: the stage-entry shortcut is the subsampled input, zero-padded to the new width.
    block = model.layer2[0]
    x = torch.randn(1, 16, 32, 32)
    shortcut = block.shortcut(x)
    assert torch.equal(shortcut[:, :16], x[:, :, ::2, ::2]) and not shortcut[:, 16:].any()
    projected = CifarResNet(depth=depth, shortcut='B')
    assert projected.layer2[0].projection is not None and projected.layer1[0].projection is None
    with pytest.raises(ValueError, match='depth must be one of'):
        CifarResNet(depth=9)


def test_torchvision_resnet101_loads_with_no_missing_or_unexpected_keys(tmp_path):
    torchvision_ckpt = tmp_path / 'resnet101-torchvision.pth'
    torch.save(torchvision.models.resnet101().state_dict(), torchvision_ckpt)
    converted = tmp_path / 'resnet101.pth'
    torch.save(dict(state_dict=convert(torch.load(torchvision_ckpt))), converted)
    # strict=True turns any missing or unexpected key into an error.
    teacher = build_teacher(dict(config=osp.join(REPO, 'configs', 'imagenet', 'resnet101_teacher.py'),
                                 checkpoint=str(converted), strict=True))
    reference = torch.load(torchvision_ckpt)
    torch.testing.assert_close(teacher.head.weight, reference['fc.weight'])
    torch.testing.assert_close(teacher.backbone.layer4[2].conv3.weight, reference['layer4.2.conv3.weight'])
    with pytest.raises(ValueError, match='not a torchvision ResNet'):
        convert({'conv1.weight': torch.zeros(1)})


# ------------------------------------------------------------------ datasets and transforms
def test_imagenet_folder_and_list_layouts(imagenet_tiny):
    folder = DATASETS.build(dict(type='ImageNet', data_root=str(imagenet_tiny), split='train'))
    listed = DATASETS.build(dict(type='ImageNet', data_root=str(imagenet_tiny), split='train',
                                 ann_file='meta/train.txt'))
    assert len(folder) == len(listed) == 6
    assert folder.metainfo['classes'] == ('n01440764', 'n01443537', 'n01484850')
    assert [d['gt_label'] for d in folder] == [d['gt_label'] for d in listed] == [0, 0, 1, 1, 2, 2]
    assert [d['img_path'] for d in folder] == [d['img_path'] for d in listed]


def test_imagenet_errors_name_path_and_layout(imagenet_tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'.*/missing/train' does not exist.*<wnid>/<image>\.JPEG"):
        DATASETS.build(dict(type='ImageNet', data_root=str(tmp_path / 'missing'), split='train'))
    bad = tmp_path / 'meta.txt'
    bad.write_text('n01440764/a.JPEG 0\nbroken-line-without-label\n')
    with pytest.raises(ValueError, match=r"meta\.txt:2: expected 'relative/path label'"):
        DATASETS.build(dict(type='ImageNet', data_root=str(imagenet_tiny), split='train', ann_file=str(bad)))
    (tmp_path / 'empty' / 'train').mkdir(parents=True)
    with pytest.raises(ValueError, match='no class folders'):
        DATASETS.build(dict(type='ImageNet', data_root=str(tmp_path / 'empty'), split='train'))


@pytest.mark.parametrize('classes', [10, 100])
def test_cifar_reads_official_batches(cifar_tiny, classes):
    split_sizes = {'train': 20 if classes == 10 else 4, 'test': 4}
    for split, size in split_sizes.items():
        dataset = DATASETS.build(dict(type=f'CIFAR{classes}', data_root=str(cifar_tiny[classes]), split=split))
        assert len(dataset) == size and len(dataset.metainfo['classes']) == classes
        assert dataset[0]['img'].shape == (32, 32, 3) and dataset[0]['img'].dtype == np.uint8
    # Pixel layout: row-major RGB planes in the file, H x W x BGR in memory.
    folder = cifar_tiny[classes] / ('cifar-10-batches-py' if classes == 10 else 'cifar-100-python')
    raw = pickle.loads((folder / ('test_batch' if classes == 10 else 'test')).read_bytes(), encoding='bytes')
    img = DATASETS.build(dict(type=f'CIFAR{classes}', data_root=str(cifar_tiny[classes]), split='test'))[1]['img']
    assert img[0, 5, 2] == raw[b'data'][1][0 * 1024 + 0 * 32 + 5]  # B channel = blue plane (index 2)
    assert img[3, 7, 0] == raw[b'data'][1][2 * 1024 + 3 * 32 + 7]


def test_cifar_errors(cifar_tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match=r'cifar-10-batches-py/batches\.meta.*official python version'):
        DATASETS.build(dict(type='CIFAR10', data_root=str(tmp_path)))
    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    (folder / 'batches.meta').write_bytes(pickle.dumps({b'label_names': [b'a']}, protocol=2))
    (folder / 'test_batch').write_bytes(pickle.dumps({b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 0]}))
    with pytest.raises(ValueError, match=r"batch 'test_batch' has data \(2, 100\)"):
        DATASETS.build(dict(type='CIFAR10', data_root=str(tmp_path), split='test'))
    (folder / 'test_batch').write_bytes(pickle.dumps(toy_parts.ToyMSE, protocol=2))
    with pytest.raises(ValueError, match='only numpy arrays are allowed'):
        DATASETS.build(dict(type='CIFAR10', data_root=str(tmp_path), split='test'))


def test_transforms():
    img = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    out = TRANSFORMS.build(dict(type='RandomResizedCrop', scale=40))(dict(img=img.copy()))
    assert out['img'].shape == (40, 40, 3)
    out = TRANSFORMS.build(dict(type='ResizeShortEdge', scale=30))(dict(img=img.copy()))
    assert out['img'].shape == (30, 45, 3)
    small = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    out = TRANSFORMS.build(dict(type='RandomCropWithPadding', size=32, padding=4))(dict(img=small.copy()))
    assert out['img'].shape == (32, 32, 3)
    padded = np.pad(small, ((4, 4), (4, 4), (0, 0)))
    assert any(np.array_equal(out['img'], padded[dy:dy + 32, dx:dx + 32]) for dy in range(9) for dx in range(9))
    packed = TRANSFORMS.build(dict(type='PackClsInputs'))(dict(img=small, gt_label=3))
    assert packed['inputs'].shape == (3, 32, 32) and int(packed['data_samples'].gt_label) == 3
    torch.testing.assert_close(packed['inputs'][1], torch.from_numpy(small[..., 1]))


def test_random_resized_crop_box_is_valid():
    transform = TRANSFORMS.build(dict(type='RandomResizedCrop', scale=8))
    for _ in range(200):
        top, left, h, w = transform.crop_box(50, 70)
        assert 0 <= top and 0 <= left and top + h <= 50 and left + w <= 70
        assert 0.08 * 3500 * 0.9 <= h * w <= 3500


def test_accuracy_metric_hand_example():
    from mmengine.evaluator import Evaluator
    from mmengine.structures import BaseDataElement
    evaluator = Evaluator(METRICS.build(dict(type='Accuracy', topk=(1, 2))))
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    labels = [0, 1, 0, 2]  # top-1 hits: sample 0 only; top-2 hits: samples 0, 1, 3
    evaluator.process([BaseDataElement(pred_score=s, gt_label=torch.tensor(l)) for s, l in zip(scores, labels)])
    assert evaluator.evaluate(4) == {'accuracy/top1': 25.0, 'accuracy/top2': 75.0}


# ------------------------------------------------------------------ every config, 2 iterations
@pytest.fixture(scope='session')
def teacher_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('teachers')
    paths = {}
    for name, net in (('resnet101', torchvision.models.resnet101()), ('resnet34', torchvision.models.resnet34())):
        paths[name] = str(root / f'{name}.pth')
        torch.save(dict(state_dict=convert(net.state_dict())), paths[name])
    init_default_scope('mmkd')
    for name in ('preact_resnet1001_cifar10', 'preact_resnet1001_cifar100', 'resnet26_cifar10', 'resnet32_cifar100'):
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'cifar', f'{name}.py'))
        paths[name] = str(root / f'{name}.pth')
        torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), paths[name])
    return paths


def shrink(cfg, data_root, work_dir, image_size):
    """The tests' --cfg-options: tiny data, batch 2, 2 iterations, no validation."""
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False, 'train_dataloader.dataset.data_root': str(data_root),
        'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2),
        'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None, 'param_scheduler': [],
        'default_hooks.checkpoint': dict(_delete_=True, type='CheckpointHook', interval=2, by_epoch=False),
        'default_hooks.logger.interval': 1, 'log_processor.by_epoch': False,
        'custom_hooks': [dict(type='RecordLossesHook')],
        'custom_imports.imports': ['mmkd', 'toy_parts'],
        'env_cfg.dist_cfg.backend': 'gloo', 'work_dir': str(work_dir), 'experiment_name': f'cfg{next(RUN_NAMES)}',
    })
    if image_size is not None:
        cfg.merge_from_dict({'train_dataloader.dataset.pipeline.1.scale': image_size})


def teacher_for(config, checkpoints):
    name = osp.basename(config)
    for teacher in ('resnet26_cifar10', 'resnet32_cifar100'):
        if name.endswith(f'_{teacher}.py'):
            return checkpoints[teacher]
    if 'cifar' in name:
        return checkpoints['preact_resnet1001_cifar100' if name.endswith('cifar100.py') else 'preact_resnet1001_cifar10']
    return checkpoints['resnet34' if 'resnet34' in name else 'resnet101']


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS, ids=lambda c: osp.splitext(osp.basename(c))[0])
def test_config_trains_two_iterations(config, imagenet_tiny, cifar_tiny, teacher_checkpoints, tmp_path,
                                      config_families):
    """The first config of each family trains 2 iterations; the others resolve and compute their own
    terms in one forward (tests/fixtures/config_families.py)."""
    cfg = Config.fromfile(config)
    is_cifar = 'cifar' in osp.basename(config)
    data_root = cifar_tiny[100 if config.endswith('cifar100.py') else 10] if is_cifar else imagenet_tiny
    shrink(cfg, data_root, tmp_path / 'work', image_size=None if is_cifar else 64)
    distiller = cfg.model.type == 'Distiller'
    if distiller:
        cfg.model.teacher.checkpoint = teacher_for(config, teacher_checkpoints)
    outcome = config_families.train_or_resolve(osp.basename(config), cfg)
    if outcome is None:
        return  # resolves to the very config that trained
    plan, representative, runner, records = outcome
    expected = {'loss_cls'} | {f'loss_{term.get("name") or term["loss"]["type"][:-4].lower()}'
                               for term in (cfg.model.distill if distiller else [])}
    two_stage = cfg.model.get('two_stage') if distiller else None
    for record in records:
        assert expected <= set(record) and all(np.isfinite(v) for v in record.values()), (representative, record)
        if two_stage is not None:  # stage 1 at iteration 0 and 1: the task loss is switched off
            assert record['loss_cls'] == 0
    if plan == 'train' and distiller:
        # The student of a Distiller checkpoint initialises a detection backbone completely.
        student = extract_student(torch.load(tmp_path / 'work' / 'iter_2.pth'))
        torch.save(student, tmp_path / 'student.pth')
        backbone = MODELS.build(dict(cfg.model.student.backbone,
                                     init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'student.pth'),
                                                   prefix='backbone.')))
        backbone.init_weights()
        trained = runner.model.student.backbone.state_dict()
        assert set(backbone.state_dict()) == set(trained)
        assert all(torch.equal(v, trained[k]) for k, v in backbone.state_dict().items())


@pytest.mark.slow
def test_teacher_evaluation_reports_accuracy(imagenet_tiny, teacher_checkpoints, tmp_path):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'imagenet', 'resnet101_teacher.py'))
    cfg.merge_from_dict({'test_dataloader.batch_size': 3, 'test_dataloader.num_workers': 0,
                         'test_dataloader.persistent_workers': False,
                         'test_dataloader.dataset.data_root': str(imagenet_tiny),
                         'test_dataloader.dataset.pipeline.1.scale': 72,
                         'test_dataloader.dataset.pipeline.2.crop_size': 64,
                         'work_dir': str(tmp_path), 'load_from': teacher_checkpoints['resnet101'],
                         'experiment_name': f'cfg{next(RUN_NAMES)}'})
    metrics = Runner.from_cfg(cfg).test()
    assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
    assert 0 <= metrics['accuracy/top1'] <= metrics['accuracy/top5'] <= 100


@pytest.mark.slow
def test_imagenet_config_trains_from_a_list_file(imagenet_tiny, teacher_checkpoints, tmp_path):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'imagenet', 'inception_bn_nst_poly_resnet101.py'))
    shrink(cfg, imagenet_tiny, tmp_path / 'work', image_size=64)
    cfg.merge_from_dict({'train_dataloader.dataset.ann_file': 'meta/train.txt',
                         'model.teacher.checkpoint': teacher_checkpoints['resnet101']})
    toy_parts.RecordLossesHook.records = []
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == 6
    runner.train()
    assert all('loss_nst' in r and 'loss_cls' in r for r in toy_parts.RecordLossesHook.records)


@pytest.mark.parametrize('config', ['configs/imagenet/inception_bn_kd_resnet101.py',
                                    'configs/cifar/inception_bn_kd_resnet1001_cifar10.py',
                                    'configs/demo/digits_inception_bn_kd.py'])
@pytest.mark.numerics
def test_kd_gradient_equals_the_nst_release(config):
    """The release: SoftmaxOutput(z_s / T, label=softmax(z_t / T), grad_scale=16) with MXNet's
    rescale_grad = 1 / N, i.e. dL/dz_s = (16 / T)(p_s - p_t) / N for each sample's logits."""
    kd_term = next(term for term in Config.fromfile(osp.join(REPO, config)).model.distill
                   if term['loss']['type'].endswith('KDLoss'))
    loss = MODELS.build(kd_term['loss'])
    gen = torch.Generator().manual_seed(0)
    student = (torch.randn(8, 10, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    teacher = torch.randn(8, 10, generator=gen, dtype=torch.float64) * 3
    grad, = torch.autograd.grad(loss(student, teacher), student)
    t = loss.temperature
    expected = 16 / t * (torch.softmax(student.detach() / t, 1) - torch.softmax(teacher / t, 1)) / len(student)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize('config', sorted(glob.glob(osp.join(REPO, 'configs', 'cifar', '*.py'))),
                         ids=lambda c: osp.basename(c))
def test_cifar_configs_normalise_with_their_own_data_set_statistics(config):
    cifar100 = config.endswith('cifar100.py')
    expected = [129.304, 124.070, 112.434] if cifar100 else [125.307, 122.961, 113.857]
    model = Config.fromfile(config).model
    models = [model]
    if model.type == 'Distiller':
        models = [model.student, Config.fromfile(model.teacher.config).model]
    for m in models:
        assert m.data_preprocessor.mean == expected and m.num_classes == (100 if cifar100 else 10)


@pytest.mark.parametrize('config', sorted(glob.glob(osp.join(REPO, 'configs', 'cifar', 'inception_bn_*resnet1001*.py'))),
                         ids=lambda c: osp.basename(c))
def test_cifar_terms_tap_the_cifar_teacher(config):
    """terms_cifar.py re-taps every ImageNet term on ResNet-1001: no term keeps the ResNet-101 tap."""
    for term in Config.fromfile(config).model.distill:
        assert term['teacher'] in ('head', 'backbone.norm'), term
