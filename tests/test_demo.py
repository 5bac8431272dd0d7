"""`make demo` end to end at the quick size: every artifact is produced and every mAP is a number."""
import json
import os
import os.path as osp
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from config_families import resolve
from mmkd.registry import MODELS
from mmkd.results import compare_methods, read_runs
from tools import demo
from mmkd.datasets.demo_data import DIGIT_CLASSES, make_demo_data


def test_demo_data_layouts(tmp_path):
    root = make_demo_data(str(tmp_path / 'data'), det_trainval=5, det_test=3, cls_train=40, labelled_per_class=2)
    train = sorted((root / 'digits' / 'train').iterdir())
    assert [p.name for p in train] == list(DIGIT_CLASSES)
    assert sum(len(list(p.glob('*.JPEG'))) for p in train) == 40
    assert sum(len(list(p.glob('*.JPEG'))) for p in (root / 'digits' / 'val').iterdir()) == 597
    # The students' labelled subset: at most 2 training digits of each class, each listed file there.
    labelled = [line.split() for line in (root / 'digits' / 'meta' / 'train_labelled.txt').read_text().splitlines()]
    counts = {}
    for path, label in labelled:
        assert (root / 'digits' / 'train' / path).is_file() and path.startswith(DIGIT_CLASSES[int(label)] + '/')
        counts[label] = counts.get(label, 0) + 1
    assert max(counts.values()) == 2 and len(labelled) == len(set(p for p, _ in labelled))
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
    make_demo_data(str(tmp_path / 'data'), det_trainval=5, det_test=3, cls_train=40, labelled_per_class=2)
    assert (root / 'demo_data.json').stat().st_mtime_ns == stamp
    # Other settings: made afresh, no image of the old split left behind.
    make_demo_data(str(tmp_path / 'data'), det_trainval=5, det_test=3, cls_train=30, labelled_per_class=2)
    assert sum(len(list(p.glob('*.JPEG'))) for p in (root / 'digits' / 'train').iterdir()) == 30


@pytest.mark.slow
def test_demo_quick_profile_end_to_end(tmp_path, capsys):
    """The demo's whole pipeline over 2 seeds (teacher, the student alone and KD+NST, their
    detectors, the report with spreads and paired differences) through the tools; the other
    students' configs are resolved in the test below."""
    work_dir, data_dir = tmp_path / 'work', tmp_path / 'data'
    args = ['--profile', 'quick', '--work-dir', str(work_dir), '--data-dir', str(data_dir), '--methods', 'kd_nst',
            '--seeds', '2']
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert '(9/9) ' in out and f'{min(2, os.cpu_count())} at a time' in out
    for name in ('results.md', 'map.png', 'convergence.png', 'loss_curves.png', 'grad_shares.png', 'attention.png'):
        assert (work_dir / name).stat().st_size > 0, name
    table = (work_dir / 'results.md').read_text()
    for label in ('teacher', 'student alone', 'KD+NST'):
        assert f'| {label}' in table
    assert '2 seeds (0, 1) per method' in table and 'KD+NST | ' in table
    kd_nst_row = next(line for line in table.splitlines() if line.startswith('| KD+NST | '))
    assert kd_nst_row.count(' ± ') == 2 and kd_nst_row.count('[') == 2   # spreads, intervals
    # Gradient shares measured every iteration of the 3-iteration students, each term by name.
    for seed in (0, 1):
        shares = demo.grad_share_records(str(work_dir / f'cls_kd_nst_seed{seed}'))
        assert [r['step'] for r in shares] == [1, 2, 3]
        assert all(r['grad_share_kd'] > 0 and r['grad_share_nst'] > 0 for r in shares)
    assert '| KD+NST | kd ' in table and 'nst ' in table.split('| KD+NST | kd ')[1]
    assert not demo.grad_share_records(str(work_dir / 'cls_baseline_seed0'))
    log = (work_dir / 'cls_kd_nst_seed0' / 'train.log').read_text()
    assert 'teacher check' in log and 'mmcv ops: ' in log and 'seed 0: work dir' in log
    losses = {}
    for method in ('baseline', 'kd_nst'):
        for seed in (0, 1):
            detection = json.load(open(work_dir / f'det_{method}_seed{seed}' / 'result.json'))
            assert 0.0 <= detection['mAP_ci95_low'] <= detection['mAP'] <= detection['mAP_ci95_high'] <= 1.0
            classification = json.load(open(work_dir / f'cls_{method}_seed{seed}' / 'result.json'))
            assert 0.0 <= classification['top1'] <= 100.0
            losses[method, seed] = [r['loss'] for r in demo.scalar_records(str(work_dir / f'cls_{method}_seed{seed}'))
                                    if 'loss' in r]
    assert losses['baseline', 0] != losses['baseline', 1]   # the seeds are different runs
    # Curves: metrics logged at their iteration; the quick detectors validated at each of their 3
    # iterations, the students at their last (a validation over the 597 digits costs seconds).
    assert [x for x, _ in demo.metric_curve(str(work_dir / 'det_kd_nst_seed1'), 'det')] == [1, 2, 3]
    assert [x for x, _ in demo.metric_curve(str(work_dir / 'cls_baseline_seed0'), 'cls')] == [3]
    assert '## Convergence' in table and 'Resolution: ' in table

    # Identical arms: the student alone's detector again, same seed, in another work dir: the paired
    # difference is exactly 0 (the runs repeat exactly; the seed fixes head, data order and sampling).
    for seed in (0, 1):
        again = demo.Demo(str(tmp_path / 'again'), str(data_dir), demo.PROFILES['quick'], False, 'cpu', 1)
        again.detector('baseline', seed, json.load(open(work_dir / f'cls_baseline_seed{seed}' / 'result.json')))
    dirs = [str(work_dir / f'det_baseline_seed{s}') for s in (0, 1)] + [str(tmp_path / 'again' / f'det_baseline_seed{s}')
                                                                          for s in (0, 1)]
    rows = compare_methods(read_runs(dirs, ['alone'] * 2 + ['alone again'] * 2))
    assert (rows[1]['diff'], rows[1]['diff low'], rows[1]['diff high']) == (0.0, 0.0, 0.0)

    # A second run reuses every finished run; one seed reuses seed 0's and says it has no spread.
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert out.count(': reused') == 9 and 'det_at' not in out
    assert demo.main(args[:-1] + ['1']) == 0
    assert capsys.readouterr().out.count(': reused') == 5
    assert 'One seed: no spread over seeds' in (work_dir / 'results.md').read_text()


def test_iteration_seed_hook_gives_each_iteration_its_own_stream():
    """The detector's draws at iteration i depend on (seed, i) alone, not on what earlier iterations
    drew (which depends on the backbone): every arm of a seed samples alike."""
    from types import SimpleNamespace

    from mmkd.engine import IterationSeedHook

    def draws(seed, iteration, consumed, hook_seed=None):
        torch.rand(consumed)   # an earlier iteration's draws, as many as its proposals asked for
        IterationSeedHook(hook_seed).before_train_iter(SimpleNamespace(seed=seed, iter=iteration), 0)
        return torch.randperm(50)

    assert torch.equal(draws(0, 7, consumed=3), draws(0, 7, consumed=1000))
    assert not torch.equal(draws(0, 7, 3), draws(0, 8, 3)) and not torch.equal(draws(0, 7, 3), draws(1, 7, 3))
    assert torch.equal(draws(5, 7, 3, hook_seed=1), draws(1, 7, 9))   # an explicit seed wins
    with pytest.raises(ValueError, match='seed=-1'):
        IterationSeedHook(-1)


def test_scheduler_runs_jobs_after_what_they_need():
    order, lock = [], threading.Lock()

    def job(name, seconds):
        def run(*needed):
            with lock:
                order.append(('start', name, needed))
            time.sleep(seconds)
            with lock:
                order.append(('end', name))
            return name.upper()
        return run

    scheduler = demo.Scheduler(2)
    scheduler.add('teacher', [], job('teacher', 0.3))
    scheduler.add('alone', [], job('alone', 0.05))
    scheduler.add('kd', ['teacher'], job('kd', 0.01))
    scheduler.add('det', ['kd'], job('det', 0.01))
    results = scheduler.run()
    assert results == dict(teacher='TEACHER', alone='ALONE', kd='KD', det='DET')
    starts = {name: (index, needed) for index, (event, name, *needed) in enumerate(order) if event == 'start'}
    ends = {name: index for index, (event, name, *_) in enumerate(order) if event == 'end'}
    assert starts['kd'][0] > ends['teacher'] and starts['kd'][1] == [('TEACHER',)]
    assert starts['det'][0] > ends['kd'] and starts['alone'][0] < ends['teacher']   # alone ran beside the teacher


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
