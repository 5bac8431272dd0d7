"""Top-k classification accuracy."""
from typing import List, Sequence

import torch
from mmengine.evaluator import BaseMetric

from mmkd.registry import METRICS


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy (%) from data samples with ``pred_score`` and ``gt_label``: ``top1``, ``top5``."""

    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), **kwargs) -> None:
        super().__init__(**kwargs)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        # mmengine's Evaluator hands metrics the data samples as dicts.
        for sample in data_samples:
            self.results.append((sample['pred_score'].detach().cpu(), int(sample['gt_label'])))

    def compute_metrics(self, results: List) -> dict:
        scores = torch.stack([score for score, _ in results])
        labels = torch.tensor([label for _, label in results])
        metrics = {}
        for k in self.topk:
            k_eff = min(k, scores.shape[1])
            hits = (scores.topk(k_eff, dim=1).indices == labels[:, None]).any(dim=1)
            metrics[f'top{k}'] = hits.float().mean().item() * 100
        return metrics
