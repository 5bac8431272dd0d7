"""`make demo` end to end at the quick size: every artifact is produced and every mAP is a number."""
import json
import os.path as osp
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from config_families import resolve
from mmkd.registry import MODELS
from tools import demo
from mmkd.datasets.demo_data import DIGIT_CLASSES, make_demo_data


def test_demo_data_layouts(tmp_path):
    root = make_demo_data(str(tmp_path / 'data'), det_trainval=5, det_test=3, cls_train=40)
    train = sorted((root / 'digits' / 'train').iterdir())
    assert [p.name for p in train] == list(DIGIT_CLASSES)
    assert sum(len(list(p.glob('*.JPEG'))) for p in train) == 40
    assert sum(len(list(p.glob('*.JPEG'))) for p in (root / 'digits' / 'val').iterdir()) == 297
    voc = root / 'VOCdevkit' / 'VOC2007'
    ids = (voc / 'ImageSets' / 'Main' / 'test.txt').read_text().split()
    assert len(ids) == 3 and all((voc / 'JPEGImages' / f'{i}.jpg').is_file() for i in ids)
    for img_id in ids:
        objects = ET.parse(voc / 'Annotations' / f'{img_id}.xml').findall('object')
        assert 2 <= len(objects) <= 4
        for obj in objects:
            box = [int(obj.find('bndbox').find(k).text) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            assert 1 <= box[0] < box[2] <= 128 and 1 <= box[1] < box[3] <= 128
            assert obj.findtext('name') in DIGIT_CLASSES
    # Same settings: reused, not rewritten.
    stamp = (root / 'demo_data.json').stat().st_mtime_ns
    make_demo_data(str(tmp_path / 'data'), det_trainval=5, det_test=3, cls_train=40)
    assert (root / 'demo_data.json').stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_demo_quick_profile_end_to_end(tmp_path, capsys):
    """The demo's whole pipeline (teacher, the student alone and KD+NST, their detectors, the report)
    through the tools; the other students' configs are resolved in the test below."""
    work_dir, data_dir = tmp_path / 'work', tmp_path / 'data'
    args = ['--profile', 'quick', '--work-dir', str(work_dir), '--data-dir', str(data_dir), '--methods', 'kd_nst']
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert '(5/5) det_kd_nst: done' in out
    for name in ('results.md', 'map.png', 'loss_curves.png', 'grad_shares.png', 'attention.png'):
        assert (work_dir / name).stat().st_size > 0, name
    table = (work_dir / 'results.md').read_text()
    for label in ('teacher', 'student alone', 'KD+NST'):
        assert f'| {label}' in table
    # Gradient shares measured every iteration of the 3-iteration students, each term by name.
    shares = demo.grad_share_records(str(work_dir), 'kd_nst')
    assert [r['step'] for r in shares] == [1, 2, 3]
    assert all(r['grad_share_kd'] > 0 and r['grad_share_nst'] > 0 for r in shares)
    assert '| KD+NST | kd ' in table and 'nst ' in table.split('| KD+NST | kd ')[1]
    assert not demo.grad_share_records(str(work_dir), 'baseline')
    log = (work_dir / 'cls_kd_nst' / 'train.log').read_text()
    assert 'teacher check' in log and 'mmcv ops: ' in log   # the ops backend is logged with the run
    for method in ('baseline', 'kd_nst'):
        detection = json.load(open(work_dir / f'det_{method}' / 'result.json'))
        assert 0.0 <= detection['mAP'] <= 1.0
        classification = json.load(open(work_dir / f'cls_{method}' / 'result.json'))
        assert 0.0 <= classification['top1'] <= 100.0
    assert osp.isfile(work_dir / 'cls_kd_nst' / 'student.pth')

    # A second run reuses every finished run and runs only the methods asked for.
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert out.count(': reused') == 5 and 'det_at' not in out


@pytest.mark.slow
def test_demo_student_configs_compute_their_terms(tmp_path):
    """Every demo student config builds (teacher, taps, connectors) and computes its own terms on
    the demo's data in one forward: the configs the end-to-end test above does not train."""
    data_root = make_demo_data(str(tmp_path / 'data'), det_trainval=2, det_test=2, cls_train=40) / 'digits'
    init_default_scope('mmkd')
    teacher = Config.fromfile(osp.join(demo.CONFIGS, 'digits_resnet18_teacher.py'))
    checkpoint = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=MODELS.build(teacher.model).state_dict()), checkpoint)
    for method in demo.METHODS:
        cfg = Config.fromfile(osp.join(demo.CONFIGS, f'digits_inception_bn_{method}.py'))
        cfg.merge_from_dict({'train_dataloader.dataset.data_root': str(data_root), 'train_dataloader.batch_size': 4,
                             'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
                             'work_dir': str(tmp_path / method)})
        if method != 'baseline':
            cfg.model.teacher.checkpoint = str(checkpoint)
        _, losses = resolve(cfg)
        expected = {'loss_cls'} | {f'loss_{term.get("name") or term["loss"]["type"][:-4].lower()}'
                                   for term in cfg.model.get('distill', [])}
        assert expected <= set(losses) and all(np.isfinite(v) for v in losses.values()), (method, losses)
