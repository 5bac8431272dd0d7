"""Images/s of the ImageNet training input pipeline next to torchvision's standard one, same files.

    python tools/benchmark_input.py [--data DIR] [--workers 2] [--images 512] [--device cuda]
                                    [--out docs/benchmarks_input.md]

Without --data, writes --images JPEGs of ImageNet's typical size (500x375, quality 90, 8 classes) in
ImageNet's folder layout to a temporary folder. Measures, over the same files, after one warm-up
pass of the loader's workers (batch 64):
  - mmkd: the train pipeline of configs/_base_/datasets/imagenet_bs64.py (OpenCV decode,
    RandomResizedCrop, flip) through the data loader and the student's ImgDataPreprocessor;
  - torchvision: ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip + PILToTensor, the
    loader, and the same normalisation;
  - with a CUDA device, device decoding: the workers only read bytes and draw the crop
    (mmkd.LoadJPEGBytes / RandomResizedCropBox), mmkd.DeviceJPEGDataPreprocessor decodes on the GPU.
Every row ends with the normalised batch on --device, so all pay the same transfer.
"""
import argparse
import copy
import os
import os.path as osp
import platform
import tempfile
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils.dl_utils import set_multi_processing
from PIL import Image
from torch.utils.data import DataLoader

import mmkd  # noqa: F401
from mmkd.benchmark import synchronize
from mmkd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATASET = osp.join(REPO, 'configs', '_base_', 'datasets', 'imagenet_bs64.py')
MODEL = osp.join(REPO, 'configs', '_base_', 'models', 'inception_bn.py')
RUNTIME = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')
DEVICE_PIPELINE = [dict(type='LoadJPEGBytes'), dict(type='RandomResizedCropBox', scale=224),
                   dict(type='PackJPEGInputs')]


def write_images(root: str, count: int, classes: int = 8) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = osp.join(root, 'train', f'n{index % classes:08d}')
        os.makedirs(folder, exist_ok=True)
        # Smooth colour fields plus noise: JPEG sizes near real photographs' (~100 KB at 500x375).
        low = rng.uniform(0, 255, (6, 8, 3))
        image = np.asarray(Image.fromarray(low.astype(np.uint8)).resize((500, 375), Image.BICUBIC), np.float32)
        image += rng.normal(0, 20, image.shape)
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(osp.join(folder, f'{index:06d}.JPEG'), quality=90)


def images_per_second(loader, preprocess, device) -> float:
    """One pass to start the workers and fill caches, then one timed pass."""
    for batch in loader:
        preprocess(batch)
    synchronize(device)
    start, count = time.perf_counter(), 0
    for batch in loader:
        out = preprocess(batch)
        count += len(out)
    synchronize(device)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', help='an ImageNet folder (DIR/train/<wnid>/*.JPEG); default: generated')
    parser.add_argument('--images', type=int, default=512)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='also write the Markdown table to this file')
    args = parser.parse_args()
    device = torch.device(args.device)
    tmp = None
    if args.data is None:
        tmp = tempfile.TemporaryDirectory()
        args.data = tmp.name
        write_images(args.data, args.images)
    init_default_scope('mmkd')
    # As the runner sets up a training process (configs/_base_/default_runtime.py's env_cfg): OpenCV
    # single-threaded, so that the loader's workers do not oversubscribe the cores.
    set_multi_processing(**Config.fromfile(RUNTIME).env_cfg.mp_cfg)
    dataset_cfg = Config.fromfile(DATASET)
    preprocessor_cfg = Config.fromfile(MODEL).model.data_preprocessor
    cpu_preprocessor = MODELS.build(preprocessor_cfg).to(device)

    def mmkd_loader(pipeline, collate):
        """The training loader as the runner builds it from the config, on these files."""
        cfg = copy.deepcopy(dataset_cfg.train_dataloader)
        cfg.update(batch_size=args.batch, num_workers=args.workers, collate_fn=dict(type=collate))
        cfg.dataset.update(data_root=args.data, pipeline=pipeline)
        return Runner.build_dataloader(cfg)

    rows = []
    mmkd_rate = images_per_second(mmkd_loader(dataset_cfg.train_pipeline, 'default_collate'),
                                  lambda b: cpu_preprocessor(b, True)['inputs'], device)
    rows.append(('mmkd train pipeline (OpenCV decode in the workers)', mmkd_rate))

    from torchvision import datasets, transforms
    folder = datasets.ImageFolder(osp.join(args.data, 'train'), transforms.Compose([
        transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(), transforms.PILToTensor()]))
    loader = DataLoader(folder, batch_size=args.batch, num_workers=args.workers, persistent_workers=True,
                        shuffle=True)
    mean = torch.tensor(preprocessor_cfg.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(preprocessor_cfg.std, device=device).view(1, 3, 1, 1)
    rows.append(('torchvision ImageFolder + RandomResizedCrop + flip (PIL decode in the workers)',
                 images_per_second(loader, lambda b: (b[0].to(device).float() - mean) / std, device)))
    if device.type == 'cuda':
        device_preprocessor = MODELS.build(dict(preprocessor_cfg, type='mmkd.DeviceJPEGDataPreprocessor')).to(device)
        rows.append(('mmkd device decoding (bytes in the workers, nvJPEG on the GPU)',
                     images_per_second(mmkd_loader(DEVICE_PIPELINE, 'pseudo_collate'),
                                       lambda b: device_preprocessor(b, True)['inputs'], device)))
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.machine()
    lines = [f'{len(folder)} JPEGs ({"generated 500x375" if tmp else args.data}), {args.workers} workers, '
             f'batch {args.batch}, to {name}; {os.cpu_count()} CPU cores; torch {torch.__version__}.',
             f'Command: `python tools/benchmark_input.py --workers {args.workers} --device {args.device}`.', '',
             '| pipeline | images/s | vs torchvision |', '|---|---:|---:|']
    base = rows[1][1]
    lines += [f'| {label} | {rate:.0f} | {rate / base:.2f}x |' for label, rate in rows]
    print('\n'.join(lines))
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    main()
