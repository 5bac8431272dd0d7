import json
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

TESTS = osp.dirname(osp.abspath(__file__))
# Test-only modules (toy models, datasets, hooks) that test configs import by name, and tools/.
sys.path.insert(0, osp.join(TESTS, 'fixtures'))
sys.path.insert(0, osp.dirname(TESTS))

import mmkd  # noqa: E402

# As mmkd's tools do: the tests torch.load the checkpoints their runs write (weights_only=True).
mmkd.allow_mmengine_checkpoints()

# Every in-process Runner logs and dumps its config through yapf's formatter, about 1.3 s each time
# on 2 cores and about a third of a small run; no test reads the layout of that text (still valid
# Python, unformatted). The tools run in subprocesses keep the formatting.
import mmengine.config.config  # noqa: E402

mmengine.config.config.FormatCode = lambda text, **kwargs: (text, False)


@pytest.fixture(scope='session')
def config_families():
    """Which config of each family trained in this session (tests/fixtures/config_families.py)."""
    from config_families import Families
    return Families()


@pytest.fixture
def coco_tiny(tmp_path):
    """Four JPEG images with boxes in COCO format; returns mmdet config overrides that train on them
    for 3 iterations without evaluation."""
    root = tmp_path / 'coco_tiny'
    (root / 'images').mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(4):
        name = f'{i:06d}.jpg'
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / 'images' / name)
        images.append(dict(id=i, file_name=name, height=96, width=128))
        for j in range(2):
            x, y = float(rng.integers(0, 60)), float(rng.integers(0, 40))
            w, h = float(rng.integers(20, 60)), float(rng.integers(20, 50))
            annotations.append(dict(id=len(annotations), image_id=i, category_id=j + 1, bbox=[x, y, w, h],
                                    area=w * h, iscrowd=0))
    categories = [dict(id=1, name='a'), dict(id=2, name='b')]
    (root / 'ann.json').write_text(json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(128, 96), keep_ratio=True), dict(type='PackDetInputs')]
    return {
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset': dict(type='CocoDataset', data_root=str(root), ann_file='ann.json',
                                         data_prefix=dict(img='images/'), metainfo=dict(classes=('a', 'b')),
                                         pipeline=pipeline),
        'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None,
        'test_dataloader': None, 'test_cfg': None, 'test_evaluator': None,
        'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop', max_iters=3),
        'param_scheduler': [], 'log_processor.by_epoch': False,
        'default_hooks.checkpoint': dict(type='CheckpointHook', interval=3, by_epoch=False),
    }


def write_jpeg(path, rng, size=(80, 96)):
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path, format='JPEG')


@pytest.fixture(scope='session')
def imagenet_tiny(tmp_path_factory):
    """ImageNet folder layout (train/val, 3 wnids x 2 JPEGs) plus meta/train.txt for the list layout."""
    root = tmp_path_factory.mktemp('imagenet')
    rng = np.random.default_rng(0)
    lines = []
    for split in ('train', 'val'):
        for label, wnid in enumerate(('n01440764', 'n01443537', 'n01484850')):
            (root / split / wnid).mkdir(parents=True)
            for i in range(2):
                write_jpeg(root / split / wnid / f'{wnid}_{i}.JPEG', rng)
                if split == 'train':
                    lines.append(f'{wnid}/{wnid}_{i}.JPEG {label}')
    (root / 'meta').mkdir()
    (root / 'meta' / 'train.txt').write_text('\n'.join(lines) + '\n')
    return root


def write_cifar(root, num_classes, rng):
    """The official python layout with 4 images per batch."""
    import pickle
    if num_classes == 10:
        folder, files, meta = root / 'cifar-10-batches-py', [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch'], 'batches.meta'
        labels_key, meta_content = b'labels', {b'label_names': [f'c{i}'.encode() for i in range(10)]}
    else:
        folder, files, meta = root / 'cifar-100-python', ['train', 'test'], 'meta'
        labels_key, meta_content = b'fine_labels', {b'fine_label_names': [f'c{i}'.encode() for i in range(100)]}
    folder.mkdir(parents=True)
    for name in files:
        batch = {b'data': rng.integers(0, 255, (4, 3072), dtype=np.uint8),
                 labels_key: [int(x) for x in rng.integers(0, num_classes, 4)], b'batch_label': name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / meta).write_bytes(pickle.dumps(meta_content, protocol=2))
    return root


@pytest.fixture(scope='session')
def cifar_tiny(tmp_path_factory):
    rng = np.random.default_rng(1)
    return {n: write_cifar(tmp_path_factory.mktemp(f'cifar{n}'), n, rng) for n in (10, 100)}


VOC_TINY_CLASSES = ('person', 'dog', 'car')


def write_voc_xml(path, img_id, width, height, objects):
    from mmkd.datasets.demo_data import voc_xml
    path.write_text(voc_xml(img_id, objects, width, height))


def write_vocdevkit(root, rng, sets=(('2007', 'trainval', 4), ('2007', 'test', 3), ('2012', 'trainval', 2))):
    """VOCdevkit/VOC<year>/{JPEGImages,Annotations,ImageSets/Main} with 160x120 images, 2-3 objects
    each (1-based boxes of at least 40 px), every third object marked difficult."""
    count = 0
    for year, image_set, n in sets:
        voc = root / f'VOC{year}'
        for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
            (voc / sub).mkdir(parents=True, exist_ok=True)
        ids = []
        for _ in range(n):
            img_id = f'{year}_{count:06d}'
            count += 1
            write_jpeg(voc / 'JPEGImages' / f'{img_id}.jpg', rng, size=(120, 160))
            objects = []
            for k in range(2 + count % 2):
                x1, y1 = int(rng.integers(1, 80)), int(rng.integers(1, 60))
                x2, y2 = x1 + int(rng.integers(40, 160 - x1)), y1 + int(rng.integers(40, 120 - y1))
                objects.append((VOC_TINY_CLASSES[(count + k) % 3], (x1, y1, x2, y2), (count + k) % 3 == 0))
            write_voc_xml(voc / 'Annotations' / f'{img_id}.xml', img_id, 160, 120, objects)
            ids.append(img_id)
        (voc / 'ImageSets' / 'Main' / f'{image_set}.txt').write_text('\n'.join(ids) + '\n')
    return root


@pytest.fixture(scope='session')
def vocdevkit(tmp_path_factory):
    return write_vocdevkit(tmp_path_factory.mktemp('VOCdevkit'), np.random.default_rng(2))
