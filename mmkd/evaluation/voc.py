"""VOC07 mAP with every class's AP, and the VOC devkit's detection result files."""
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.evaluation import VOCMetric, eval_map
from mmengine.logging import MMLogger

from mmkd.registry import METRICS


@METRICS.register_module()
class VOC07Metric(VOCMetric):
    """mmdet's ``VOCMetric`` at IoU 0.5 with VOC2007's 11-point AP (difficult objects ignored, as
    mmdet's VOCDataset marks them), reporting ``mAP`` and ``AP_<class>`` for every class.

    Args:
        devkit_dir: if set, also write ``comp4_det_test_<class>.txt`` there, one line per
            detection, ``<image id> <score> <xmin> <ymin> <xmax> <ymax>`` in the devkit's 1-based
            pixel coordinates, for checking with the official devkit.
    """

    def __init__(self, devkit_dir: Optional[str] = None, eval_mode: str = '11points', **kwargs) -> None:
        super().__init__(metric='mAP', iou_thrs=0.5, eval_mode=eval_mode, **kwargs)
        self.devkit_dir = devkit_dir

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        start = len(self.results)
        super().process(data_batch, data_samples)
        # Keep each image's id with its (gt, pred) pair, for the devkit files.
        for index, sample in enumerate(data_samples):
            self.results[start + index] = (*self.results[start + index], str(sample['img_id']))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        gts, preds, img_ids = zip(*results)
        classes = self.dataset_meta['classes']
        mean_ap, per_class = eval_map(list(preds), list(gts), iou_thr=0.5, dataset=list(classes),
                                      logger=MMLogger.get_current_instance(), eval_mode=self.eval_mode,
                                      use_legacy_coordinate=True)
        metrics = {'mAP': float(mean_ap)}
        metrics.update({f'AP_{name}': float(result['ap']) for name, result in zip(classes, per_class)})
        if self.devkit_dir is not None:
            write_devkit_results(self.devkit_dir, img_ids, preds, classes)
        return metrics


def write_devkit_results(out_dir: str, img_ids: Sequence[str], preds: Sequence[List[np.ndarray]],
                         classes: Sequence[str]) -> None:
    """``preds[i][c]``: (N, 5) ``x1, y1, x2, y2, score`` of class c in image i (mmdet's 0-based
    coordinates; the devkit's are 1-based)."""
    os.makedirs(out_dir, exist_ok=True)
    for c, name in enumerate(classes):
        with open(osp.join(out_dir, f'comp4_det_test_{name}.txt'), 'w') as f:
            for img_id, pred in zip(img_ids, preds):
                for x1, y1, x2, y2, score in pred[c]:
                    f.write(f'{img_id} {score:.6f} {x1 + 1:.2f} {y1 + 1:.2f} {x2 + 1:.2f} {y2 + 1:.2f}\n')


def read_devkit_results(out_dir: str, classes: Sequence[str]) -> Dict[str, List[np.ndarray]]:
    """The inverse of :func:`write_devkit_results`: image id -> per-class (N, 5) arrays."""
    rows: Dict[str, List[list]] = defaultdict(lambda: [[] for _ in classes])
    for c, name in enumerate(classes):
        path = osp.join(out_dir, f'comp4_det_test_{name}.txt')
        with open(path) as f:
            for number, line in enumerate(f, start=1):
                parts = line.split()
                if len(parts) != 6:
                    raise ValueError(f'{path}:{number}: expected "<id> <score> <xmin> <ymin> <xmax> <ymax>".')
                score, x1, y1, x2, y2 = map(float, parts[1:])
                rows[parts[0]][c].append([x1 - 1, y1 - 1, x2 - 1, y2 - 1, score])
    return {img_id: [np.array(r, dtype=np.float32).reshape(-1, 5) for r in per_class]
            for img_id, per_class in rows.items()}
