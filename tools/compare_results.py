"""Compare VOC07 mAP across work dirs, like the NST paper's detection table.

    python tools/compare_results.py work_dirs/frcnn_baseline work_dirs/frcnn_kd ... \
        [--names baseline kd ...] [--paper] [--out-dir work_dirs/compare]
    python tools/compare_results.py --paper-table configs/voc     # a folder's published numbers

Each work dir's latest ``pascal_voc/mAP`` (from tools/test.py, or the last validation of a training
run) is read from mmengine's JSON logs. Writes ``results.md`` and ``results.csv`` (method, mAP,
paper mAP, every class's AP; mAP and APs in %) and ``map.png`` (a bar chart) to --out-dir, and
prints the Markdown table. The paper column comes from ``configs/voc/metafile.yml``: the row whose
name (or alias) is the method's name, else the row of the config the work dir was run with.
"""
import argparse
import csv
import glob
import os
import os.path as osp
import sys
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

from mmkd.metafile import load_metafile, markdown_table, published  # noqa: E402
from mmkd.results import bar_chart, latest_metrics  # noqa: E402

VOC_METAFILE = osp.join(REPO, 'configs', 'voc', 'metafile.yml')


def run_config(work_dir: str) -> Optional[str]:
    """The config a work dir was run with (the runner dumps it there)."""
    dumped = sorted(glob.glob(osp.join(work_dir, '*.py')))
    return dumped[0] if dumped else None


def build_rows(work_dirs: List[str], names: List[str], paper: bool) -> List[dict]:
    rows = []
    published_rows = load_metafile(VOC_METAFILE) if paper else []
    for name, work_dir in zip(names, work_dirs):
        metrics = latest_metrics(work_dir)
        row = {'method': name, 'mAP': 100 * metrics['mAP']}
        if paper:
            match = published(name, run_config(work_dir), published_rows)
            row['paper mAP'] = match['Metrics']['mAP'] if match else None
        row.update({k[3:]: 100 * v for k, v in metrics.items() if k.startswith('AP_')})
        rows.append(row)
    return rows


def fmt(value: Optional[float]) -> str:
    return '—' if value is None else f'{value:.1f}'


def markdown(rows: List[dict]) -> str:
    columns = list(rows[0])
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' + '---:|' * (len(columns) - 1)]
    for row in rows:
        lines.append('| ' + ' | '.join([row['method']] + [fmt(row.get(c)) for c in columns[1:]]) + ' |')
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='*')
    parser.add_argument('--names', nargs='+', help='method names (default: the work dirs\' names)')
    parser.add_argument('--paper', action='store_true', help="add the NST paper's mAP for known method names")
    parser.add_argument('--out-dir', default='work_dirs/compare')
    parser.add_argument('--paper-table', metavar='CONFIG_FOLDER',
                        help="print the published numbers of a config folder's metafile.yml and exit")
    args = parser.parse_args()
    if args.paper_table:
        print(markdown_table(osp.join(args.paper_table, 'metafile.yml')))
        return 0
    if not args.work_dirs:
        parser.error('give work dirs to compare (or --paper-table CONFIG_FOLDER).')
    names = args.names or [osp.basename(osp.normpath(d)) for d in args.work_dirs]
    if len(names) != len(args.work_dirs):
        parser.error(f'{len(names)} names for {len(args.work_dirs)} work dirs.')
    rows = build_rows(args.work_dirs, names, args.paper)
    os.makedirs(args.out_dir, exist_ok=True)
    table = markdown(rows)
    with open(osp.join(args.out_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.out_dir, 'results.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    bar_chart(rows, osp.join(args.out_dir, 'map.png'))
    print(table)
    print(f'\nwrote {args.out_dir}/results.md, results.csv, map.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
