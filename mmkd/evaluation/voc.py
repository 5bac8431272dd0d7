"""VOC07 mAP with every class's AP, and the VOC devkit's detection result files."""
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.evaluation import VOCMetric, eval_map
from mmdet.evaluation.functional.mean_ap import average_precision, get_cls_results, tpfp_default
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
        bootstrap: if > 0, also report ``mAP_ci95_low`` / ``mAP_ci95_high``, the 95 % percentile
            interval of mAP over that many resamples of the test images (with replacement; fixed
            generator, so the interval repeats): the evaluation's own uncertainty from which
            images the test set happens to hold, for a single run. 1,000 resamples of 100 images
            take about 2 s on 2 cores.
    """

    def __init__(self, devkit_dir: Optional[str] = None, eval_mode: str = '11points', bootstrap: int = 0,
                 **kwargs) -> None:
        super().__init__(metric='mAP', iou_thrs=0.5, eval_mode=eval_mode, **kwargs)
        self.devkit_dir = devkit_dir
        self.bootstrap = bootstrap

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
        if self.bootstrap > 0:
            matches = image_matches(list(preds), list(gts), len(classes))
            low, high = bootstrap_interval(matches, self.eval_mode, self.bootstrap)
            metrics.update(mAP_ci95_low=low, mAP_ci95_high=high)
        if self.devkit_dir is not None:
            write_devkit_results(self.devkit_dir, img_ids, preds, classes)
        return metrics


def image_matches(preds: list, gts: list, num_classes: int) -> List[List[tuple]]:
    """Per class, per image: (scores, tp, fp, number of counted ground truths), from mmdet's own
    ``get_cls_results`` and ``tpfp_default`` at IoU 0.5, as ``eval_map`` computes them."""
    matches = []
    for c in range(num_classes):
        dets, cls_gts, cls_ignore = get_cls_results(preds, gts, c)
        per_image = []
        for det, gt, ignore in zip(dets, cls_gts, cls_ignore):
            tp, fp = tpfp_default(det, gt, ignore, 0.5, None, True)
            per_image.append((det[:, -1], tp[0], fp[0], gt.shape[0]))
        matches.append(per_image)
    return matches


def map_of_images(matches: List[List[tuple]], images: Sequence[int], eval_mode: str) -> float:
    """``eval_map``'s mAP over the images ``images`` (indices; repeats count again): per class, the
    detections sorted by score, cumulative TP/FP, mmdet's ``average_precision``; the mean over
    classes with ground truth. Equals ``eval_map`` on those images (tests/test_results.py)."""
    eps = np.finfo(np.float32).eps
    aps = []
    for per_image in matches:
        num_gts = sum(per_image[i][3] for i in images)
        if num_gts == 0:
            continue
        scores, tp, fp = (np.concatenate([per_image[i][k] for i in images]) for k in range(3))
        order = np.argsort(-scores)
        tp, fp = np.cumsum(tp[order]), np.cumsum(fp[order])
        # Dtypes as eval_map's: recalls in float64 (int64 counts), precisions in float32; the
        # 11-point thresholds compare against them exactly.
        recalls = tp / np.maximum(np.array([num_gts]), eps)
        aps.append(average_precision(recalls, tp / np.maximum(tp + fp, eps), eval_mode))
    return float(np.mean(aps)) if aps else 0.0


def bootstrap_interval(matches: List[List[tuple]], eval_mode: str, resamples: int, level: float = 0.95,
                       seed: int = 0) -> tuple:
    """The percentile interval of mAP over ``resamples`` resamples of the images with replacement."""
    num_images = len(matches[0])
    rng = np.random.default_rng(seed)
    values = [map_of_images(matches, rng.integers(0, num_images, num_images), eval_mode) for _ in range(resamples)]
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


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
