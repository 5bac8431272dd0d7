"""JPEG decoding in the data preprocessor (the GPU option): the same crops and pixels as the CPU
pipeline, here with torchvision's CPU decoder (on a GPU the preprocessor uses nvJPEG)."""
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from PIL import Image

import mmkd  # noqa: F401
from mmkd.datasets import DataFileError
from mmkd.registry import MODELS, TRANSFORMS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device: nvJPEG is checked on a GPU machine'))]


@pytest.fixture
def jpegs(tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for index, (w, h) in enumerate([(500, 375), (333, 500), (640, 480)]):
        low = rng.uniform(0, 255, (5, 7, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC), np.float32)
        image += rng.normal(0, 15, image.shape)
        path = str(tmp_path / f'{index}.JPEG')
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def build(cfg):
    init_default_scope('mmkd')
    return TRANSFORMS.build(cfg)


def decode_both_ways(paths, device, flips):
    """Each file through the device-decoding training pipeline and through the CPU pipeline with the
    same crop box and flip: (the preprocessor's output, the CPU pipeline's images)."""
    load_bytes, pack = build(dict(type='LoadJPEGBytes')), build(dict(type='PackJPEGInputs'))
    boxes = [build(dict(type='RandomResizedCropBox', scale=96, flip_prob=p)) for p in flips]
    load, crop = build(dict(type='LoadImageFromFile')), build(dict(type='RandomResizedCrop', scale=96))
    items, expected = [], []
    for seed, (path, box) in enumerate(zip(paths, boxes)):
        random.seed(seed)
        item = pack(box(load_bytes(dict(img_path=path, gt_label=seed))))
        random.seed(seed)
        img = crop(load(dict(img_path=path, gt_label=seed)))['img']   # same crop box drawn
        if item['data_samples'].flip:
            img = img[:, ::-1]
        items.append(item)
        expected.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float())
    assert [i['data_samples'].flip for i in items] == [p == 1.0 for p in flips]
    preprocessor = MODELS.build(dict(type='mmkd.DeviceJPEGDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]))
    preprocessor.to(device)
    return preprocessor, preprocessor(pseudo_collate(items), True), expected


def assert_same_pixels(out, expected, device):
    for ours, theirs in zip(out['inputs'].cpu(), expected):
        difference = (ours - theirs).abs()
        print(f'{device}: max {difference.max():.0f}, mean {difference.mean():.3f} grey levels')
        if device == 'cpu':  # libjpeg both; OpenCV resizes uint8 in fixed point: 1 level, rarely
            assert difference.max() <= 1 and difference.mean() < 0.3
        else:  # nvJPEG upsamples chroma and rounds its IDCT otherwise than libjpeg: on the H100
            # machine, max 13 and mean 1.4 grey levels on the first image (2026-11-25)
            assert difference.max() <= 24 and difference.mean() < 3.0


@pytest.mark.parametrize('device', DEVICES)
def test_device_decoding_equals_the_cpu_pipeline(jpegs, device):
    preprocessor, out, expected = decode_both_ways(jpegs, device, (0.0, 1.0, 0.0))
    assert_same_pixels(out, expected, device)
    assert [s.gt_label.item() for s in out['data_samples']] == [0, 1, 2]
    # Decoded batches (the validation pipeline) pass through as with ImgDataPreprocessor.
    decoded = preprocessor(dict(inputs=[e.to(torch.uint8) for e in expected], data_samples=None), False)
    assert torch.equal(decoded['inputs'].cpu(), torch.stack(expected))


@pytest.mark.parametrize('device', DEVICES)
def test_odd_imagenet_files_decode_as_the_cpu_pipeline_decodes_them(tmp_path, device):
    """ImageNet's train set holds grayscale and CMYK JPEGs and a PNG named .JPEG; photos carry EXIF
    orientations, which OpenCV applies. Each comes out as the CPU pipeline's 3-channel, upright image."""
    rng = np.random.default_rng(5)
    rgb = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    paths = [str(tmp_path / f'{name}.JPEG') for name in ('gray', 'cmyk', 'png', 'rotated')]
    rgb.convert('L').save(paths[0], format='JPEG')
    rgb.convert('CMYK').save(paths[1], format='JPEG')
    rgb.save(paths[2], format='PNG')
    exif = Image.Exif()
    exif[0x0112] = 6   # rotate 90 degrees clockwise to display
    rgb.save(paths[3], format='JPEG', exif=exif.tobytes())
    preprocessor, out, expected = decode_both_ways(paths, device, (0.0, 1.0, 0.0, 1.0))
    assert out['inputs'].shape == (4, 3, 96, 96)
    assert_same_pixels(out, expected, device)
    load = build(dict(type='LoadJPEGBytes'))
    assert load(dict(img_path=paths[3], gt_label=0))['ori_shape'] == (160, 120)   # upright: portrait


def test_truncated_jpeg_is_named(jpegs, tmp_path):
    data = open(jpegs[0], 'rb').read()
    broken = tmp_path / 'broken.JPEG'
    broken.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFileError, match='broken.JPEG: not a complete JPEG'):
        build(dict(type='LoadJPEGBytes'))(dict(img_path=str(broken), gt_label=0))


def test_device_decode_config_switches_the_training_pipeline_only():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'imagenet', 'inception_bn_kd_nst_resnet101_device-decode.py'))
    assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline] == [
        'LoadJPEGBytes', 'RandomResizedCropBox', 'PackJPEGInputs']
    assert cfg.train_dataloader.collate_fn.type == 'pseudo_collate'
    assert cfg.val_dataloader.dataset.pipeline[0]['type'] == 'LoadImageFromFile'
    preprocessor = cfg.model.student.data_preprocessor
    assert preprocessor.type == 'mmkd.DeviceJPEGDataPreprocessor' and preprocessor.bgr_to_rgb
    assert [term['loss']['type'] for term in cfg.model.distill] == ['KDLoss', 'NSTLoss']
