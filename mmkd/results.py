"""Reading results back from mmengine's logs, and charting them (tools/compare_results.py, tools/demo.py)."""
import glob
import json
import os
import os.path as osp
from typing import Dict, List

PREFIX = 'pascal_voc/'


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


def bar_chart(rows: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 4))
    positions = range(len(rows))
    has_paper = any(row.get('paper mAP') is not None for row in rows)
    width = 0.4 if has_paper else 0.6
    ax.bar([p - (width / 2 if has_paper else 0) for p in positions], [r['mAP'] for r in rows], width, label='mmkd')
    if has_paper:
        ax.bar([p + width / 2 for p in positions], [r.get('paper mAP') or 0 for r in rows], width, label='NST paper')
        ax.legend()
    ax.set_xticks(list(positions), [r['method'] for r in rows], rotation=20)
    ax.set_ylabel('VOC2007 test mAP (%)')
    ax.set_title('Faster R-CNN, VOC07 11-point mAP @ IoU 0.5')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
