"""Reading results back from mmengine's logs, comparing methods over seeds, and charting them
(tools/compare_results.py, tools/demo.py)."""
import glob
import json
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence

from .statistics import paired_difference, summarize

# metric name -> (log prefix, factor to %): VOC07Metric reports fractions, Accuracy percentages.
METRICS = {'mAP': ('pascal_voc/', 100.0), 'top1': ('accuracy/', 1.0)}
PREFIX = METRICS['mAP'][0]
SEEDED = re.compile(r'^(?P<method>.+)_seed(?P<seed>\d+)$')


def latest_metrics(work_dir: str, prefix: str = PREFIX) -> Dict[str, float]:
    """The last JSON log record holding ``<prefix>...`` metrics (e.g. pascal_voc/mAP, accuracy/top1),
    searching the newest run folder first; keys are returned without the prefix."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')) + glob.glob(osp.join(work_dir, '*', 'vis_data', '*.json')),
                  key=lambda p: (osp.relpath(p, work_dir).split(os.sep)[0], p))
    for path in reversed(logs):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        for record in reversed(records):
            metrics = {k[len(prefix):]: float(v) for k, v in record.items() if k.startswith(prefix)}
            if metrics:
                return metrics
    raise FileNotFoundError(f'{work_dir}: no JSON log with {prefix}* metrics; run tools/test.py with '
                            f'--work-dir {work_dir} first.')


def run_config(work_dir: str) -> Optional[str]:
    """The config a work dir was run with (the runner dumps it there)."""
    dumped = sorted(glob.glob(osp.join(work_dir, '*.py')))
    return dumped[0] if dumped else None


def read_runs(work_dirs: Sequence[str], names: Optional[Sequence[str]] = None) -> List[dict]:
    """One record per work dir: ``method`` (``names[i]``, else the dir's name without ``_seed<N>``),
    ``seed`` (from ``_seed<N>``, else None), ``metric`` ('mAP' where the logs have VOC metrics, else
    'top1'), ``value`` and ``classes`` (each class's AP) in %, and ``ci`` (the metric's bootstrap
    interval over the test images, if it reported one)."""
    runs = []
    for index, work_dir in enumerate(work_dirs):
        base = osp.basename(osp.normpath(work_dir))
        seeded = SEEDED.match(base)
        method = names[index] if names else (seeded['method'] if seeded else base)
        for metric, (prefix, scale) in METRICS.items():
            try:
                metrics = latest_metrics(work_dir, prefix)
            except FileNotFoundError:
                continue
            if metric in metrics:
                break
        else:
            raise FileNotFoundError(f'{work_dir}: no JSON log with pascal_voc/mAP or accuracy/top1; run '
                                    f'tools/test.py with --work-dir {work_dir} first.')
        ci = None
        if f'{metric}_ci95_low' in metrics:
            ci = (scale * metrics[f'{metric}_ci95_low'], scale * metrics[f'{metric}_ci95_high'])
        runs.append(dict(method=method, seed=int(seeded['seed']) if seeded else None, work_dir=work_dir,
                         metric=metric, value=scale * metrics[metric], ci=ci,
                         classes={k[3:]: scale * v for k, v in metrics.items() if k.startswith('AP_')}))
    return runs


def compare_methods(runs: List[dict], baseline: Optional[str] = None,
                    paper: Optional[Callable[[str, str], Optional[float]]] = None) -> List[dict]:
    """One row per method, in the order of first appearance: n, seeds, mean ± std of the metric, the
    single run's bootstrap interval (n = 1), the difference to ``baseline`` paired by seed with its
    95 % interval (mmkd/statistics.py), ``paper(method, work_dir)``'s number if given, each class's
    mean AP; ``points`` (per-seed values), ``cis`` (per-seed bootstrap intervals, None where not
    reported) and ``work_dirs`` for charts and look-ups."""
    methods: Dict[str, List[dict]] = {}
    for run in runs:
        methods.setdefault(run['method'], []).append(run)
    metric = runs[0]['metric']
    if any(run['metric'] != metric for run in runs):
        raise ValueError('the work dirs mix detection (mAP) and classification (top1) results: compare them apart.')
    baseline = baseline or next(iter(methods))
    if baseline not in methods:
        raise ValueError(f'--baseline {baseline}: not among the methods {list(methods)}.')
    by_seed = {method: {r['seed']: r['value'] for r in group} for method, group in methods.items()}
    for method, seeds in by_seed.items():
        if len(seeds) != len(methods[method]):
            raise ValueError(f'{method}: two runs with the same seed ({[r["work_dir"] for r in methods[method]]}).')
    rows = []
    for method, group in methods.items():
        stats = summarize([r['value'] for r in group])
        row = dict(method=method, metric=metric, n=stats['n'],
                   seeds=' '.join('-' if r['seed'] is None else str(r['seed']) for r in group))
        row[metric] = stats['mean']
        row[f'{metric} std'] = stats['std']
        single_ci = group[0]['ci'] if stats['n'] == 1 else None
        row[f'{metric} ci95 low'], row[f'{metric} ci95 high'] = single_ci or (None, None)
        row['baseline'] = baseline
        if method == baseline:
            row.update({'diff': None, 'diff low': None, 'diff high': None, 'diff excludes 0': None})
        else:
            diff = paired_difference(by_seed[method], by_seed[baseline])
            row.update({'diff': diff['mean'], 'diff low': diff['low'], 'diff high': diff['high'],
                        'diff excludes 0': diff['excludes_zero'], 'paired seeds': diff['n']})
        if paper is not None:
            row['paper mAP'] = paper(method, group[0]['work_dir'])
        for name in group[0]['classes']:
            row[name] = summarize([r['classes'][name] for r in group])['mean']
        row['points'] = [r['value'] for r in group]
        row['cis'] = [r['ci'] for r in group]
        row['work_dirs'] = [r['work_dir'] for r in group]
        rows.append(row)
    return rows


def _signed(value: float) -> str:
    return f'{value:+.1f}'.replace('-', '−')


def format_value(row: dict) -> str:
    """'76.1 ± 0.4' (n >= 2), '76.1 [74.0, 78.2]' (one run with a bootstrap interval) or '76.1'."""
    metric = row['metric']
    text = f'{row[metric]:.1f}'
    if row[f'{metric} std'] is not None:
        return f'{text} ± {row[f"{metric} std"]:.1f}'
    if row.get(f'{metric} ci95 low') is not None:
        return f'{text} [{row[f"{metric} ci95 low"]:.1f}, {row[f"{metric} ci95 high"]:.1f}]'
    return text


def format_diff(row: dict) -> str:
    """'+0.6 [−0.2, +1.4]', with '*' where the interval excludes zero; '—' for the baseline."""
    if row['diff'] is None:
        return '—'
    if row['diff low'] is None:
        return f'{_signed(row["diff"])} (1 seed)'
    mark = ' *' if row['diff excludes 0'] else ''
    return f'{_signed(row["diff"])} [{_signed(row["diff low"])}, {_signed(row["diff high"])}]{mark}'


COMPARISON_KEYS = ('method', 'metric', 'n', 'seeds', 'baseline', 'diff', 'diff low', 'diff high', 'diff excludes 0',
                   'paired seeds', 'paper mAP', 'points', 'cis', 'work_dirs')


def markdown_comparison(rows: List[dict]) -> str:
    metric = rows[0]['metric']
    classes = [k for k in rows[0] if k not in COMPARISON_KEYS and not k.startswith(metric)]
    paper = 'paper mAP' in rows[0]
    header = ['method', 'n', f'{metric} (%)', f'Δ vs {rows[0]["baseline"]} (95 % CI)'] + (['paper'] if paper else []) + classes
    lines = ['| ' + ' | '.join(header) + ' |', '|---|' + '---:|' * (len(header) - 1)]
    for row in rows:
        cells = [row['method'], str(row['n']), format_value(row), format_diff(row)]
        if paper:
            cells.append('—' if row['paper mAP'] is None else f'{row["paper mAP"]:.1f}')
        cells += [f'{row[c]:.1f}' for c in classes]
        lines.append('| ' + ' | '.join(cells) + ' |')
    n_max = max(row['n'] for row in rows)
    note = (f'\n\nmean ± std over seeds; Δ: mean of the per-seed differences to {rows[0]["baseline"]} with its 95 % '
            "t-interval; * marks an interval that excludes zero." if n_max > 1 else
            '\n\nOne run per method: no spread over seeds; [a, b] is the bootstrap interval over the test images.')
    return '\n'.join(lines) + note


def bar_chart(rows: List[dict], path: str, metric: str = 'mAP') -> None:
    """Bars of the means with std error bars, each seed's value as a point, the paper's bars beside."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 4))
    positions = list(range(len(rows)))
    has_paper = any(row.get('paper mAP') is not None for row in rows)
    width = 0.4 if has_paper else 0.6
    left = [p - (width / 2 if has_paper else 0) for p in positions]
    errors = [row.get(f'{metric} std') or 0 for row in rows]
    ax.bar(left, [r[metric] for r in rows], width, yerr=errors, capsize=4, label='mmkd', color='#9ecae1')
    for x, row in zip(left, rows):
        points = row.get('points', [row[metric]])
        offsets = [width * 0.3 * (i / max(1, len(points) - 1) - 0.5) for i in range(len(points))]
        ax.scatter([x + o for o in offsets], points, s=12, color='#08519c', zorder=3,
                   label='one seed' if x == left[0] else None)
    if has_paper:
        ax.bar([p + width / 2 for p in positions], [r.get('paper mAP') or 0 for r in rows], width, label='NST paper',
               color='#fdae6b')
    ax.legend(fontsize=7)
    ax.set_xticks(positions, [r['method'] for r in rows], rotation=20)
    n = max(row.get('n', 1) for row in rows)
    if metric == 'mAP':
        ax.set_ylabel('VOC2007 test mAP (%)')
        ax.set_title(f'Faster R-CNN, VOC07 11-point mAP @ IoU 0.5 ({n} seed{"s" if n > 1 else ""}, mean ± std)')
    else:
        ax.set_ylabel('top-1 (%)')
        ax.set_title(f'top-1 accuracy ({n} seed{"s" if n > 1 else ""}, mean ± std)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
