"""Compare methods over seeds: VOC07 mAP (or top-1) with mean ± std and paired differences.

    python tools/compare_results.py work_dirs/frcnn_baseline_seed0 work_dirs/frcnn_baseline_seed1 \
        work_dirs/frcnn_kd_seed0 work_dirs/frcnn_kd_seed1 ... [--names ...] [--baseline baseline] \
        [--paper] [--out-dir work_dirs/compare]
    python tools/compare_results.py --paper-table configs/voc     # a folder's published numbers

Each work dir's latest ``pascal_voc/mAP`` (else ``accuracy/top1``; from tools/test.py, or the last
validation of a training run) is read from mmengine's JSON logs. Work dirs named
``<method>_seed<N>`` (tools/train.py --seed N, tools/train_seeds.py) are one method's runs; --names
gives each work dir its method instead. Per method: n, mean ± std (and each class's mean AP), and the
difference to the baseline method (default: the first) paired by seed, with its 95 % t-interval,
marked * where the interval excludes zero (mmkd/statistics.py). A single run shows the bootstrap
interval over the test images where the metric reported one (``VOC07Metric(bootstrap=1000)``).

Writes ``results.md``, ``results.csv`` and ``map.png`` (means with std error bars and every seed's
point) to --out-dir and prints the Markdown table. The paper column comes from
``configs/voc/metafile.yml``: the row whose name (or alias) is the method's name, else the row of the
config the work dir was run with.
"""
import argparse
import csv
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

from mmkd.metafile import load_metafile, markdown_table, published  # noqa: E402
from mmkd.results import bar_chart, compare_methods, markdown_comparison, read_runs, run_config  # noqa: E402

VOC_METAFILE = osp.join(REPO, 'configs', 'voc', 'metafile.yml')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='*')
    parser.add_argument('--names', nargs='+', help="each work dir's method (default: its name without _seed<N>)")
    parser.add_argument('--baseline', help='the method the others are compared with (default: the first)')
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
    if args.names and len(args.names) != len(args.work_dirs):
        parser.error(f'{len(args.names)} names for {len(args.work_dirs)} work dirs.')
    published_rows = load_metafile(VOC_METAFILE) if args.paper else []

    def paper(method, work_dir):
        match = published(method, run_config(work_dir), published_rows)
        return match['Metrics']['mAP'] if match else None

    rows = compare_methods(read_runs(args.work_dirs, args.names), args.baseline, paper if args.paper else None)
    os.makedirs(args.out_dir, exist_ok=True)
    table = markdown_comparison(rows)
    with open(osp.join(args.out_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    columns = [c for c in rows[0] if c not in ('work_dirs', 'points', 'cis')]
    with open(osp.join(args.out_dir, 'results.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    bar_chart(rows, osp.join(args.out_dir, 'map.png'), metric=rows[0]['metric'])
    print(table)
    print(f'\nwrote {args.out_dir}/results.md, results.csv, map.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
