"""JPEG decoding on the GPU, for when the data loader's CPU cores cannot feed it.

The workers read the file's bytes and the image size from its header and draw the random crop and
flip; the data preprocessor, in the training process, decodes the batch on the device
(``torchvision.io.decode_jpeg(..., device='cuda')``, nvJPEG), crops, resizes, flips and normalises::

    train_pipeline = [dict(type='LoadJPEGBytes'), dict(type='RandomResizedCropBox', scale=224),
                      dict(type='PackJPEGInputs')]
    model = dict(student=dict(data_preprocessor=dict(type='mmkd.DeviceJPEGDataPreprocessor')))

(``configs/imagenet/inception_bn_kd_nst_resnet101_device-decode.py``); ``tools/benchmark_input.py``
measures it next to the CPU pipeline. The crop and flip are drawn
as in :class:`RandomResizedCrop` / mmcv's ``RandomFlip``; the resize is bilinear without
antialiasing, as ``mmcv.imresize`` (OpenCV) does it, but on nvJPEG's decoded pixels, which differ from
libjpeg's by the IDCT's rounding (a few grey levels).
"""
import random
from typing import List, Optional, Sequence

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmengine.model import ImgDataPreprocessor
from mmengine.structures import BaseDataElement
from PIL import Image

from mmkd.registry import MODELS, TRANSFORMS
from .loading import CHECK, DataFileError, JPEG_START, is_truncated_jpeg
from .transforms import RandomResizedCrop


#: EXIF tag of the orientation; 1 is upright.
ORIENTATION = 0x0112


def needs_cpu_decoding(image: Image.Image) -> bool:
    """Files the device decoder would get wrong: not a JPEG (ImageNet's train set holds a PNG named
    .JPEG), not 3-channel YCbCr/RGB (grayscale and CMYK JPEGs), or with an EXIF orientation (which
    OpenCV, hence the CPU pipeline, applies and nvJPEG does not)."""
    return image.format != 'JPEG' or image.mode != 'RGB' or image.getexif().get(ORIENTATION, 1) != 1


@TRANSFORMS.register_module()
class LoadJPEGBytes(BaseTransform):
    """``img_bytes`` (the file, a uint8 array) and ``ori_shape`` (from the JPEG header, no decoding).

    A file the device decoder would get wrong (:func:`needs_cpu_decoding`) is decoded here instead,
    as the CPU pipeline decodes it (OpenCV: 3 channels, EXIF orientation applied): ``img`` holds
    its RGB pixels and the preprocessor only crops and resizes it."""

    def transform(self, results: dict) -> dict:
        filename = results['img_path']
        with open(filename, 'rb') as f:
            data = f.read()
        try:
            with Image.open(filename) as image:
                cpu = needs_cpu_decoding(image)
                width, height = image.size
        except Exception as error:
            raise DataFileError(f'image {filename}: {error}; {CHECK}.') from error
        if cpu:
            img = mmcv.imfrombytes(data, flag='color', channel_order='rgb')
            if img is None:
                raise DataFileError(f'image {filename}: cannot be decoded; {CHECK}.')
            results['img'] = img
            height, width = img.shape[:2]
        elif data[:2] != JPEG_START or is_truncated_jpeg(filename):
            raise DataFileError(f'image {filename}: not a complete JPEG; {CHECK}.')
        else:
            results['img_bytes'] = np.frombuffer(data, dtype=np.uint8)
        results['ori_shape'] = results['img_shape'] = (height, width)
        return results


@TRANSFORMS.register_module()
class RandomResizedCropBox(RandomResizedCrop):
    """:class:`RandomResizedCrop`'s crop box and a horizontal flip (``flip_prob``), drawn here and
    applied on the device by :class:`DeviceJPEGDataPreprocessor`."""

    def __init__(self, scale: int, flip_prob: float = 0.5, **kwargs) -> None:
        super().__init__(scale, **kwargs)
        self.flip_prob = flip_prob

    def transform(self, results: dict) -> dict:
        results['crop_box'] = self.crop_box(*results['ori_shape'])
        results['flip'] = random.random() < self.flip_prob
        results['img_shape'] = (self.scale, self.scale)
        return results


@TRANSFORMS.register_module()
class PackJPEGInputs(BaseTransform):
    """``inputs``: the JPEG bytes; the data sample carries the label, crop box, flip and size."""

    def transform(self, results: dict) -> dict:
        sample = BaseDataElement(
            gt_label=torch.tensor(results['gt_label']),
            metainfo=dict(img_path=results.get('img_path'), crop_box=results['crop_box'],
                          flip=results['flip'], img_shape=results['img_shape']))
        if 'img_bytes' in results:
            inputs = torch.from_numpy(results['img_bytes'].copy())
        else:  # decoded by the worker: (3, H, W) RGB, as the device decoder returns it
            inputs = torch.from_numpy(np.ascontiguousarray(results['img'].transpose(2, 0, 1)))
        return dict(inputs=inputs, data_samples=sample)


@MODELS.register_module()
class DeviceJPEGDataPreprocessor(ImgDataPreprocessor):
    """Decodes a batch of JPEG byte tensors on the model's device, applies each sample's
    ``crop_box``/``flip`` and resizes to its ``img_shape``, then normalises as ``ImgDataPreprocessor``
    (same ``mean``/``std``/``bgr_to_rgb`` as the CPU pipeline's config: decoded pixels are put in
    OpenCV's BGR order first). Batches of decoded images (already tensors) pass through unchanged."""

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs, samples = data['inputs'], data.get('data_samples') or []
        encoded = isinstance(inputs, (list, tuple)) and any(i.dim() == 1 for i in inputs)
        if encoded or (samples and 'crop_box' in samples[0].metainfo):   # the training pipeline's batch
            data = dict(data, inputs=self.decode(inputs, samples))
        return super().forward(data, training)

    def decode(self, inputs: Sequence[torch.Tensor], samples: List[BaseDataElement]) -> List[torch.Tensor]:
        """JPEG bytes decoded on the device (3 channels, RGB); pixels the workers decoded (odd
        files) moved there; then each sample's crop, resize and flip."""
        from torchvision.io import ImageReadMode, decode_jpeg
        device = self.device if self.device.type == 'cuda' else 'cpu'
        encoded = [i for i, x in enumerate(inputs) if x.dim() == 1]
        images = list(inputs)
        for i, image in zip(encoded, decode_jpeg([inputs[i] for i in encoded], mode=ImageReadMode.RGB,
                                                 device=device) if encoded else []):
            images[i] = image
        out = []
        for image, sample in zip(images, samples):
            out.append(crop_resize_flip(image.to(device), sample.metainfo.get('crop_box'), sample.img_shape,
                                        sample.metainfo.get('flip', False)).flip(0))  # RGB -> BGR
        return out


def crop_resize_flip(image: torch.Tensor, box: Optional[Sequence[int]], size: Sequence[int],
                     flip: bool) -> torch.Tensor:
    """(C, H, W) uint8: crop ``box`` = (top, left, h, w), bilinear resize to ``size`` (half-pixel
    centres, no antialiasing, as OpenCV's INTER_LINEAR), optional horizontal flip; uint8 out."""
    if box is not None:
        top, left, h, w = box
        image = image[:, top:top + h, left:left + w]
    if tuple(image.shape[1:]) != tuple(size):
        image = F.interpolate(image[None].float(), size=tuple(size), mode='bilinear', align_corners=False,
                              antialias=False)[0].round_().clamp_(0, 255).to(torch.uint8)
    return image.flip(-1) if flip else image
