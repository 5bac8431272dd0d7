"""Published numbers, one ``metafile.yml`` per config folder (as OpenMMLab's metafiles): the paper,
its setting, the metric and value, and the config that reproduces the row. The README tables,
``tools/compare_results.py --paper`` and the tests all read them, so a number lives in one place.

    Papers:
      NST: {Title: ..., URL: ...}
    Results:
      - Name: kd-nst                 # what compare_results.py --names matches (also: Aliases)
        Method: KD+NST
        Paper: NST
        Setting: ...
        Configs: [faster-rcnn_inception-bn-kd-nst_fpn_voc07.py, ...]
        Metrics: {mAP: 77.2}
"""
import glob
import os.path as osp
from typing import Dict, List, Optional

import yaml

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def load_metafile(path: str) -> List[dict]:
    """The rows of one metafile, each with the paper's title and its configs as paths."""
    with open(path) as f:
        meta = yaml.safe_load(f)
    papers = meta.get('Papers', {})
    rows = []
    for row in meta['Results']:
        if row['Paper'] not in papers:
            raise ValueError(f"{path}: result {row['Name']!r} cites paper {row['Paper']!r}, not under Papers.")
        row = dict(row, Title=papers[row['Paper']]['Title'],
                   Configs=[osp.join(osp.dirname(path), c) for c in row.get('Configs', [])])
        missing = [c for c in row['Configs'] if not osp.isfile(c)]
        if missing:
            raise FileNotFoundError(f"{path}: result {row['Name']!r} names configs that do not exist: {missing}")
        rows.append(row)
    return rows


def all_results(configs_dir: str = CONFIGS) -> List[dict]:
    return [row for path in sorted(glob.glob(osp.join(configs_dir, '*', 'metafile.yml')))
            for row in load_metafile(path)]


def published(name: Optional[str] = None, config: Optional[str] = None,
              rows: Optional[List[dict]] = None) -> Optional[dict]:
    """The row a short name (``kd-nst``, case-insensitive, ``+`` as ``-``) or a config file names."""
    rows = all_results() if rows is None else rows
    if name is not None:
        key = name.lower().replace('+', '-')
        for row in rows:
            if key == row['Name'] or key in row.get('Aliases', []):
                return row
    if config is not None:
        for row in rows:
            if osp.basename(config) in map(osp.basename, row['Configs']):
                return row
    return None


def markdown_table(path: str) -> str:
    """The README's table for one metafile: config(s), method, setting's paper, every metric."""
    rows = load_metafile(path)
    metrics: List[str] = []
    for row in rows:
        metrics += [m for m in row['Metrics'] if m not in metrics]
    lines = ['| config | method | paper | ' + ' | '.join(metrics) + ' |',
             '|---|---|---|' + '---:|' * len(metrics)]
    # As many decimals in a column as its most precise value has (25.30 next to 24.82, not 25.3).
    decimals = {m: max(1 + any(round(r['Metrics'][m], 1) != r['Metrics'][m] for r in rows if m in r['Metrics']), 1)
                for m in metrics}
    for row in rows:
        configs = ', '.join(f'`{osp.basename(c)}`' for c in row['Configs']) or '—'
        values: Dict[str, str] = {m: f'{v:.{decimals[m]}f}' for m, v in row['Metrics'].items()}
        lines.append(f"| {configs} | {row['Method']} | {row['Paper']} | " +
                     ' | '.join(values.get(m, '—') for m in metrics) + ' |')
    return '\n'.join(lines)
