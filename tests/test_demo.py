"""`make demo` end to end at the quick size: every artifact is produced and every mAP is a number."""
import json
import os.path as osp
import xml.etree.ElementTree as ET

import pytest

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
    work_dir, data_dir = tmp_path / 'work', tmp_path / 'data'
    args = ['--profile', 'quick', '--work-dir', str(work_dir), '--data-dir', str(data_dir)]
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert '(13/13) det_kd_nst: done' in out
    for name in ('results.md', 'map.png', 'loss_curves.png', 'grad_shares.png', 'attention.png'):
        assert (work_dir / name).stat().st_size > 0, name
    table = (work_dir / 'results.md').read_text()
    for label in ('teacher', 'student alone', 'KD', 'AT', 'FitNet', 'NST (poly)', 'KD+NST'):
        assert f'| {label}' in table
    # Gradient shares measured every iteration of the 3-iteration students, each term by name.
    shares = demo.grad_share_records(str(work_dir), 'kd_nst')
    assert [r['step'] for r in shares] == [1, 2, 3]
    assert all(r['grad_share_kd'] > 0 and r['grad_share_nst'] > 0 for r in shares)
    assert '| KD+NST | kd ' in table and 'nst ' in table.split('| KD+NST | kd ')[1]
    assert not demo.grad_share_records(str(work_dir), 'baseline')
    assert 'teacher check' in (work_dir / 'cls_kd' / 'train.log').read_text()
    for method in demo.METHODS:
        detection = json.load(open(work_dir / f'det_{method}' / 'result.json'))
        assert 0.0 <= detection['mAP'] <= 1.0
        classification = json.load(open(work_dir / f'cls_{method}' / 'result.json'))
        assert 0.0 <= classification['top1'] <= 100.0
    assert osp.isfile(work_dir / 'cls_kd' / 'student.pth')

    # A second run reuses every finished run; a subset runs only those methods.
    assert demo.main(args + ['--methods', 'kd']) == 0
    out = capsys.readouterr().out
    assert out.count(': reused') == 5 and 'det_at' not in out
