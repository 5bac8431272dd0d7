"""Results over seeds: the statistics against hand computations, compare_results.py, the bootstrap
interval of VOC07 mAP, and train_seeds.py."""
import csv
import json
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmdet.evaluation import eval_map

from mmkd.evaluation.voc import VOC07Metric, bootstrap_interval, image_matches, map_of_images
from mmkd.results import compare_methods, format_diff, markdown_comparison, read_runs
from mmkd.statistics import paired_difference, summarize, t_cdf, t_quantile

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(REPO, 'tests', 'fixtures')


@pytest.mark.parametrize('df, quantile', [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423),
                                          (100, 1.9840)])
def test_t_quantile_matches_the_tables(df, quantile):
    """t(0.975, df) as printed in every statistics table (4 decimals); df = 1 is the Cauchy
    distribution, whose quantile tan(0.475 pi) is known in closed form."""
    assert round(t_quantile(0.975, df), 4) == quantile
    assert t_cdf(0.0, df) == pytest.approx(0.5, abs=1e-12)
    assert t_cdf(-1.3, df) == pytest.approx(1 - t_cdf(1.3, df), abs=1e-12)
    if df == 1:
        assert t_quantile(0.975, 1) == pytest.approx(math.tan(0.475 * math.pi), rel=1e-9)


def test_summary_and_paired_difference_by_hand():
    assert summarize([50.0, 52.0, 54.0]) == dict(mean=52.0, std=2.0, n=3)
    assert summarize([7.0]) == dict(mean=7.0, std=None, n=1)
    # Differences 3, 2, 4 (seed 3 only in one run: not paired): mean 3, sd 1, se 1/sqrt(3);
    # t(0.975, 2) = 4.302653 -> half-width 2.484138.
    diff = paired_difference({0: 53.0, 1: 54.0, 2: 58.0, 3: 99.0}, {0: 50.0, 1: 52.0, 2: 54.0})
    assert diff['seeds'] == [0, 1, 2] and diff['n'] == 3
    assert diff['mean'] == pytest.approx(3.0) and diff['std'] == pytest.approx(1.0)
    assert diff['low'] == pytest.approx(3 - 2.484138, abs=1e-5) and diff['high'] == pytest.approx(3 + 2.484138, abs=1e-5)
    assert diff['excludes_zero']
    one = paired_difference({0: 1.0}, {0: 0.5})
    assert one['mean'] == 0.5 and one['low'] is None and not one['excludes_zero']
    with pytest.raises(ValueError, match='no seed in common'):
        paired_difference({0: 1.0}, {1: 1.0})


def write_run(work_dir, metrics):
    """A work dir as tools/test.py leaves it: mmengine's scalars.json with the test metrics."""
    folder = osp.join(work_dir, '20261205_120000', 'vis_data')
    os.makedirs(folder)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        f.write(json.dumps(dict(metrics, step=1)) + '\n')


RUNS = {'baseline': [50.0, 52.0, 54.0], 'kd': [53.0, 54.0, 58.0], 'at': [49.0, 53.0, 55.0]}


@pytest.fixture
def seeded_runs(tmp_path):
    dirs = []
    for method, values in RUNS.items():
        for seed, value in enumerate(values):
            work_dir = str(tmp_path / f'{method}_seed{seed}')
            write_run(work_dir, {'pascal_voc/mAP': value / 100, 'pascal_voc/AP_cat': (value + seed) / 100,
                                 'pascal_voc/AP_dog': (value - seed) / 100})
            dirs.append(work_dir)
    return dirs


def test_compare_methods_by_hand(seeded_runs):
    rows = {row['method']: row for row in compare_methods(read_runs(seeded_runs))}
    assert list(rows) == ['baseline', 'kd', 'at']
    assert rows['kd']['mAP'] == pytest.approx(55.0) and rows['kd']['mAP std'] == pytest.approx(math.sqrt(7.0))
    assert rows['kd']['seeds'] == '0 1 2' and rows['kd']['n'] == 3
    assert rows['kd']['cat'] == pytest.approx(56.0) and rows['kd']['dog'] == pytest.approx(54.0)
    # kd - baseline: 3, 2, 4 (above); at - baseline: -1, 1, 1: mean 1/3, sd 2/sqrt(3), half-width
    # 4.302653 * (2/sqrt(3)) / sqrt(3) = 2.868435: the interval holds zero.
    assert rows['kd']['diff excludes 0'] and rows['kd']['diff low'] == pytest.approx(0.515862, abs=1e-5)
    assert rows['at']['diff'] == pytest.approx(1 / 3)
    assert rows['at']['diff low'] == pytest.approx(1 / 3 - 2.868435, abs=1e-5) and not rows['at']['diff excludes 0']
    table = markdown_comparison(list(rows.values()))
    assert '| kd | 3 | 55.0 ± 2.6 | +3.0 [+0.5, +5.5] * |' in table
    assert '| at | 3 | 52.3 ± 3.1 | +0.3 [−2.5, +3.2] |' in table
    assert '| baseline | 3 | 52.0 ± 2.0 | — |' in table
    # Against another baseline, with its sign: baseline - kd = -3.
    rows = {row['method']: row for row in compare_methods(read_runs(seeded_runs), baseline='kd')}
    assert rows['baseline']['diff'] == pytest.approx(-3.0) and rows['baseline']['diff high'] < 0


def test_identical_arms_differ_by_exactly_zero_and_runs_pair_by_seed(seeded_runs, tmp_path):
    """Two arms with the same per-seed values: Δ 0 with the interval [0, 0]. The pairing is by seed,
    not by the order the runs come in: reversed, kd's differences are still 3, 2, 4."""
    twin = []
    for seed, value in enumerate(RUNS['baseline']):
        twin.append(str(tmp_path / f'twin_seed{seed}'))
        write_run(twin[-1], {'pascal_voc/mAP': value / 100})
    rows = compare_methods(read_runs(seeded_runs[:3] + twin, names=['alone'] * 3 + ['alone again'] * 3))
    assert (rows[1]['diff'], rows[1]['diff low'], rows[1]['diff high']) == (0.0, 0.0, 0.0)
    assert not rows[1]['diff excludes 0'] and format_diff(rows[1]) == '+0.0 [+0.0, +0.0]'
    kd_reversed = list(reversed(seeded_runs[3:6]))
    rows = {row['method']: row for row in compare_methods(read_runs(seeded_runs[:3] + kd_reversed))}
    assert rows['kd']['points'] == pytest.approx([58.0, 54.0, 53.0]) and rows['kd']['diff'] == pytest.approx(3.0)
    assert rows['kd']['diff low'] == pytest.approx(0.515862, abs=1e-5)


def test_compare_methods_refuses_mixed_or_duplicate_runs(seeded_runs, tmp_path):
    write_run(str(tmp_path / 'cls_seed0'), {'accuracy/top1': 90.0})
    with pytest.raises(ValueError, match='mix detection'):
        compare_methods(read_runs([seeded_runs[0], str(tmp_path / 'cls_seed0')]))
    with pytest.raises(ValueError, match='same seed'):
        compare_methods(read_runs([seeded_runs[0], seeded_runs[3]], names=['baseline', 'baseline']))


def test_compare_results_tool_over_seeds(seeded_runs, tmp_path):
    out_dir = tmp_path / 'compare'
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'compare_results.py'), *seeded_runs,
                           '--out-dir', str(out_dir)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r['method']: r for r in csv.DictReader(open(out_dir / 'results.csv'))}
    assert float(rows['kd']['mAP']) == pytest.approx(55.0) and rows['kd']['diff excludes 0'] == 'True'
    assert rows['at']['diff excludes 0'] == 'False' and rows['baseline']['diff'] == ''
    assert '* marks an interval that excludes zero' in (out_dir / 'results.md').read_text()
    assert (out_dir / 'map.png').stat().st_size > 0


def test_a_single_run_shows_its_bootstrap_interval(tmp_path):
    write_run(str(tmp_path / 'baseline'), {'pascal_voc/mAP': 0.5, 'pascal_voc/mAP_ci95_low': 0.45,
                                           'pascal_voc/mAP_ci95_high': 0.56})
    write_run(str(tmp_path / 'kd'), {'pascal_voc/mAP': 0.52})
    rows = compare_methods(read_runs([str(tmp_path / 'baseline'), str(tmp_path / 'kd')]))
    table = markdown_comparison(rows)
    assert '| baseline | 1 | 50.0 [45.0, 56.0] | — |' in table and '| kd | 1 | 52.0 | +2.0 (1 seed) |' in table
    assert 'One run per method' in table


def random_detections(rng, images=60, classes=4):
    def boxes(k):
        xy = rng.uniform(0, 80, (k, 2))
        return np.hstack([xy, xy + rng.uniform(5, 30, (k, 2))]).astype(np.float32)

    gts = [dict(bboxes=boxes(4), labels=rng.integers(0, classes, 4), bboxes_ignore=boxes(1),
                labels_ignore=rng.integers(0, classes, 1)) for _ in range(images)]
    preds = [[np.hstack([boxes(3), rng.uniform(0, 1, (3, 1))]).astype(np.float32) for _ in range(classes)]
             for _ in range(images)]
    for gt, pred in zip(gts, preds):   # some true positives, so the AP is not ~0
        for box, label in zip(gt['bboxes'][:2], gt['labels'][:2]):
            pred[int(label)][0, :4] = box + 1
    return gts, preds


def test_map_of_resampled_images_equals_mmdet_eval_map():
    """The bootstrap's mAP of a resample (repeated images included) is mmdet's eval_map of it."""
    rng = np.random.default_rng(0)
    gts, preds = random_detections(rng)
    matches = image_matches(preds, gts, 4)
    for images in (np.arange(len(gts)), rng.integers(0, len(gts), len(gts)), np.array([5, 5, 7])):
        expected, _ = eval_map([preds[i] for i in images], [gts[i] for i in images], iou_thr=0.5, logger='silent',
                               eval_mode='11points', use_legacy_coordinate=True, nproc=1)
        assert map_of_images(matches, images, '11points') == expected


def test_voc07_metric_reports_a_bootstrap_interval():
    rng = np.random.default_rng(1)
    gts, preds = random_detections(rng)
    metric = VOC07Metric(bootstrap=200)
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    results = metric.compute_metrics([(gt, pred, str(i)) for i, (gt, pred) in enumerate(zip(gts, preds))])
    assert results['mAP_ci95_low'] < results['mAP'] < results['mAP_ci95_high']
    # The same resamples each time (a fixed generator), and a wider interval on a quarter of the images.
    matches = image_matches(preds, gts, 4)
    assert bootstrap_interval(matches, '11points', 200) == (results['mAP_ci95_low'], results['mAP_ci95_high'])
    small = bootstrap_interval(image_matches(preds[:15], gts[:15], 4), '11points', 200)
    assert small[1] - small[0] > results['mAP_ci95_high'] - results['mAP_ci95_low']


@pytest.mark.slow
def test_train_seeds_runs_each_seed_once(tmp_path):
    """tools/train_seeds.py: one run per seed in <work dir>_seed<N> with that seed; finished seeds
    are skipped (and left out of --print); the seeds give different runs."""
    work = str(tmp_path / 'toy')
    command = [sys.executable, osp.join(REPO, 'tools', 'train_seeds.py'), osp.join(FIXTURES, 'toy_config.py'),
               '--seeds', '0', '1', '--work-dir', work]
    env = dict(os.environ, PYTHONPATH=FIXTURES)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = {}
    for seed in (0, 1):
        run = f'{work}_seed{seed}'
        assert osp.isfile(osp.join(run, 'iter_2.pth'))
        assert f'seed={seed}' in open(osp.join(run, 'toy_config.py')).read().replace(' ', '')
        scalars, = [osp.join(d, 'vis_data', 'scalars.json') for d in os.scandir(run) if d.is_dir()]
        losses[seed] = [json.loads(line)['loss'] for line in open(scalars)]
    assert losses[0] != losses[1]
    again = subprocess.run(command + ['--print'], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert again.returncode == 0 and again.stdout == ''
    assert again.stderr.count('finished') == 2
    third = subprocess.run(command[:3] + ['--seeds', '1', '2', '--work-dir', work, '--print'], capture_output=True,
                           text=True, env=env, cwd=str(tmp_path))
    assert third.stdout.count('train.py') == 1 and '--seed 2 --resume' in third.stdout
