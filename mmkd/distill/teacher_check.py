"""Is the teacher any good? A cheap check at the start of training.

A random or wrong teacher checkpoint (another dataset's, another class order, a run that never
trained) loads without error when its shapes fit, and distillation from it quietly ruins the
student. So before the first iteration the teacher predicts the first few validation batches, the
run's own validation metric scores it, and a score near chance is reported loudly (or stops the
run with ``strict=True``).

Scores it can judge (the metric key's last part): ``top1``/``accuracy`` in percent (chance:
100 / classes) and ``mAP``/``bbox_mAP`` as a fraction (chance: 0). Near chance means the score
covers less than ``margin`` of the way from chance to perfect.
"""
import contextlib
import copy
import random
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, all_reduce, get_world_size
from mmengine.logging import print_log
from torch import nn

#: metric name -> (unit of a perfect score, whether chance is 1 / classes of it, else 0)
JUDGED_METRICS = {'top1': (100.0, True), 'accuracy': (100.0, True), 'mAP': (1.0, False), 'bbox_mAP': (1.0, False)}


class TeacherCheckError(RuntimeError):
    """The teacher scores near chance on the validation data (``strict=True``)."""


def judge(metrics: Dict[str, float], num_classes: Optional[int]) -> Optional[Tuple[str, float, float, float]]:
    """(metric key, score, chance, perfect) of the first metric it can judge, or None."""
    for key, score in metrics.items():
        name = key.split('/')[-1]
        if name in JUDGED_METRICS:
            perfect, per_class = JUDGED_METRICS[name]
            if per_class and not num_classes:
                continue
            return key, float(score), perfect / num_classes if per_class else 0.0, perfect
    return None


@contextlib.contextmanager
def random_state_kept():
    """Whatever the check draws (a data loader iterator draws its workers' base seed from torch's
    generator), the run's random streams continue as if it had not run: a seeded run trains the
    same with the check on or off."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def restrict_to_scored_images(evaluator, image_ids: list) -> None:
    """COCO-style metrics (mmdet's CocoMetric and its kin) score against every image of their
    annotation file, so a perfect teacher judged on a few batches would look near chance: restrict
    them to the images the check predicted (on every rank)."""
    if get_world_size() > 1:
        gathered = all_gather_object(image_ids)
        image_ids = [i for ids in gathered for i in ids]
    for metric in evaluator.metrics:
        if getattr(metric, '_coco_api', None) is not None and hasattr(metric, 'img_ids'):
            metric.img_ids = sorted({i for i in image_ids if i is not None})


def check_teacher(runner, teacher: nn.Module, student: nn.Module, describe: str, num_batches: int = 4,
                  strict: bool = False, margin: float = 0.05) -> Optional[dict]:
    """Score ``teacher`` on the first ``num_batches`` batches of the runner's validation loader with
    its validation metric; returns dict(metric, score, chance, perfect, images, near_chance) or
    None where it could not judge (said in the log)."""
    loop = runner.val_loop
    evaluator_cfg = runner.cfg.get('val_evaluator')
    if loop is None or evaluator_cfg is None:
        print_log(f'teacher check skipped: the config has no validation loop to score {describe} on '
                  '(val_dataloader, val_cfg, val_evaluator).', logger='current', level=30)
        return None
    evaluator = runner.build_evaluator(copy.deepcopy(evaluator_cfg))
    dataset = loop.dataloader.dataset
    evaluator.dataset_meta = getattr(dataset, 'metainfo', None)
    device = next(student.parameters()).device
    teacher.to(device).eval()
    images, num_classes = 0, len((evaluator.dataset_meta or {}).get('classes') or ()) or None
    seen_ids = []
    with torch.no_grad(), random_state_kept():
        for index, batch in enumerate(loop.dataloader):
            if index >= num_batches:
                break
            outputs = teacher.val_step(batch)
            evaluator.process(data_samples=outputs, data_batch=batch)
            images += len(outputs)
            seen_ids += [getattr(output, 'metainfo', {}).get('img_id') for output in outputs]
            score = getattr(outputs[0], 'pred_score', None) if outputs else None
            if num_classes is None and isinstance(score, torch.Tensor):
                num_classes = score.numel()
    if get_world_size() > 1:
        count = torch.tensor([images], device=device)
        all_reduce(count)
        images = int(count.item())
    restrict_to_scored_images(evaluator, seen_ids)
    metrics = evaluator.evaluate(images)
    judged = judge(metrics, num_classes)
    if judged is None:
        print_log(f'teacher check: {describe} scored {metrics} on {images} validation images; no metric it '
                  f'can judge against chance ({", ".join(JUDGED_METRICS)}), so nothing is checked.',
                  logger='current', level=30)
        return None
    key, score, chance, perfect = judged
    near_chance = (score - chance) < margin * (perfect - chance)
    result = dict(metric=key, score=score, chance=chance, perfect=perfect, images=images, near_chance=near_chance)
    summary = (f'{describe} scores {key} = {score:.4g} on the first {images} validation images '
               f'(chance {chance:.4g}, perfect {perfect:g})')
    if not near_chance:
        print_log(f'teacher check passed: {summary}.', logger='current')
        return result
    message = (f'teacher check FAILED: {summary}: near chance. Distilling from it would teach the student '
               'noise. Likely causes: a random or wrong teacher checkpoint (another dataset, class order '
               "or normalisation than this run's), or strict=False loading that left the teacher random. "
               'Fix the teacher checkpoint; to train anyway, set teacher_check=dict(strict=False) '
               '(a warning) or teacher_check=None.')
    if strict:
        raise TeacherCheckError(message)
    print_log('!' * 20 + ' ' + message, logger='current', level=30)
    return result
