"""Classification transforms that mmcv lacks (mmcv supplies LoadImageFromFile, CenterCrop, RandomFlip)."""
import math
import random
from typing import Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmkd.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Inception-style crop: area fraction in ``crop_scale``, log-uniform aspect ratio in ``ratio``,
    resized to ``scale`` x ``scale`` (10 tries, then a central crop of the clamped ratio)."""

    def __init__(self, scale: int, crop_scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = 'bilinear') -> None:
        self.scale = scale
        self.crop_scale = crop_scale
        self.ratio = ratio
        self.interpolation = interpolation

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * random.uniform(*self.crop_scale)
            aspect = math.exp(random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top, left = random.randint(0, height - h), random.randint(0, width - w)
                return top, left, h, w
        aspect = width / height
        if aspect < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif aspect > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left, h, w = self.crop_box(*img.shape[:2])
        crop = mmcv.imcrop(img, np.array([left, top, left + w - 1, top + h - 1]))
        results['img'] = mmcv.imresize(crop, (self.scale, self.scale), interpolation=self.interpolation)
        results['img_shape'] = results['img'].shape[:2]
        return results


@TRANSFORMS.register_module()
class ResizeShortEdge(BaseTransform):
    """Resize so that the shorter side is ``scale`` pixels, keeping the aspect ratio."""

    def __init__(self, scale: int, interpolation: str = 'bilinear') -> None:
        self.scale = scale
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        factor = self.scale / min(h, w)
        size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
        results['img'] = mmcv.imresize(results['img'], size, interpolation=self.interpolation)
        results['img_shape'] = results['img'].shape[:2]
        return results


@TRANSFORMS.register_module()
class RandomCropWithPadding(BaseTransform):
    """CIFAR augmentation: zero-pad ``padding`` pixels on every side, then a random ``size`` crop."""

    def __init__(self, size: int = 32, padding: int = 4) -> None:
        self.size = size
        self.padding = padding

    def transform(self, results: dict) -> dict:
        p = self.padding
        img = mmcv.impad(results['img'], padding=(p, p, p, p), pad_val=0)
        h, w = img.shape[:2]
        top, left = random.randint(0, h - self.size), random.randint(0, w - self.size)
        results['img'] = img[top:top + self.size, left:left + self.size]
        results['img_shape'] = results['img'].shape[:2]
        return results


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """``img`` (H x W x C) -> ``inputs`` (C x H x W uint8 tensor); ``gt_label`` -> a data sample."""

    def transform(self, results: dict) -> dict:
        img = np.ascontiguousarray(results['img'].transpose(2, 0, 1))
        sample = BaseDataElement(gt_label=torch.tensor(results['gt_label']),
                                 metainfo=dict(img_path=results.get('img_path'), img_shape=results['img'].shape[:2]))
        return dict(inputs=torch.from_numpy(img), data_samples=sample)
