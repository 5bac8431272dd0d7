"""The demo's data, made from scikit-learn's handwritten digits (1,797 real 8x8 scans, shipped in the
package): nothing is downloaded.

    python tools/demo_data.py data/demo [--det-trainval 300 --det-test 100]   (this module's main())

- ``digits/{train,val}/digit_<k>/*.JPEG``: the ImageNet folder layout, 64x64 RGB (the 8x8 scans
  upsampled, ink in a per-image colour on a dark background); 1,200 train / 597 val images.
- ``digits/meta/train_labelled.txt``: the students' labelled subset, ``labelled_per_class`` training
  digits of each class (drawn once, seed 0) as ``relative/path label`` lines: the teacher learns from
  all training digits, the students from these few, so that a student alone stays well below the
  teacher and there is room for distillation to show.
- ``VOCdevkit/VOC2007``: 128x128 canvases with 2-4 digits pasted at 24-56 px, VOC XML annotations
  (boxes tight around the ink, 1-based), digits under 30 px marked ``difficult``, and
  ``ImageSets/Main/{trainval,test}.txt``. Test canvases use only digits from the val split.
"""
import argparse
import json
import os.path as osp
import shutil
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image

DIGIT_CLASSES = tuple(f'digit_{k}' for k in range(10))
CLS_SIZE = 64
CANVAS = 128


def load_digit_scans() -> Tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships its data: no download
    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def colourise(scan: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """8x8 ink in [0, 1] -> size x size x 3 uint8: coloured ink on a dark, slightly noisy ground."""
    ink = np.asarray(Image.fromarray((scan * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR),
                     dtype=np.float32) / 255
    colour = rng.uniform(0.5, 1.0, 3)
    ground = rng.uniform(0.0, 0.25, 3)
    image = ground + ink[..., None] * (colour - ground)
    image += rng.normal(0, 0.03, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def split(labels: np.ndarray, num_val: int = 597) -> Tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(0).permutation(len(labels))
    return np.sort(order[num_val:]), np.sort(order[:num_val])


def write_classification(root: Path, scans: np.ndarray, labels: np.ndarray, indices: np.ndarray, split_name: str,
                         rng: np.random.Generator) -> None:
    for cls in DIGIT_CLASSES:
        (root / split_name / cls).mkdir(parents=True, exist_ok=True)
    for index in indices:
        image = colourise(scans[index], CLS_SIZE, rng)
        Image.fromarray(image).save(root / split_name / DIGIT_CLASSES[labels[index]] / f'{index:04d}.JPEG',
                                    quality=95)


def write_labelled_list(root: Path, labels: np.ndarray, indices: np.ndarray, per_class: int) -> None:
    """meta/train_labelled.txt: ``per_class`` of the training digits of each class (fewer where a class
    has fewer), in the ImageNet list-file format."""
    rng = np.random.default_rng(0)
    lines = []
    for label, cls in enumerate(DIGIT_CLASSES):
        members = indices[labels[indices] == label]
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        lines += [f'{cls}/{index:04d}.JPEG {label}' for index in chosen]
    (root / 'meta').mkdir(parents=True, exist_ok=True)
    (root / 'meta' / 'train_labelled.txt').write_text('\n'.join(lines) + '\n')


def ink_box(scan: np.ndarray, size: int) -> Tuple[int, int, int, int]:
    """Tight box (x1, y1, x2, y2) of the ink after upsampling the 8x8 scan to size x size, 0-based."""
    ink = np.asarray(Image.fromarray((scan * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)) > 64
    ys, xs = np.nonzero(ink)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def paste_canvas(scans: np.ndarray, labels: np.ndarray, pool: np.ndarray, rng: np.random.Generator):
    """A canvas with 2-4 non-overlapping digits; returns the image and [(class, box, difficult)]."""
    canvas = np.zeros((CANVAS, CANVAS, 3), dtype=np.float32) + rng.uniform(0, 0.2, 3)
    canvas += rng.normal(0, 0.03, canvas.shape)
    objects, occupied = [], []
    for _ in range(int(rng.integers(2, 5))):
        for _attempt in range(20):
            size = int(rng.integers(24, 57))
            x, y = int(rng.integers(0, CANVAS - size)), int(rng.integers(0, CANVAS - size))
            if all(x + size <= ox or ox + os_ <= x or y + size <= oy or oy + os_ <= y for ox, oy, os_ in occupied):
                break
        else:
            continue
        index = int(rng.choice(pool))
        patch = colourise(scans[index], size, rng).astype(np.float32) / 255
        ink = np.asarray(Image.fromarray((scans[index] * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR),
                         dtype=np.float32)[..., None] / 255
        region = canvas[y:y + size, x:x + size]
        canvas[y:y + size, x:x + size] = region * (1 - ink) + patch * ink
        x1, y1, x2, y2 = ink_box(scans[index], size)
        objects.append((DIGIT_CLASSES[labels[index]], (x + x1 + 1, y + y1 + 1, x + x2 + 1, y + y2 + 1), size < 30))
        occupied.append((x, y, size))
    return (np.clip(canvas, 0, 1) * 255).astype(np.uint8), objects


def voc_xml(img_id: str, objects: List[tuple], width: int = CANVAS, height: int = CANVAS) -> str:
    """A VOC annotation; objects are (class name, (xmin, ymin, xmax, ymax) 1-based, difficult)."""
    parts = [f'<annotation><folder>VOC2007</folder><filename>{img_id}.jpg</filename>',
             f'<size><width>{width}</width><height>{height}</height><depth>3</depth></size>']
    for name, (x1, y1, x2, y2), difficult in objects:
        parts.append(f'<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>'
                     f'<difficult>{int(difficult)}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>'
                     f'<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>')
    parts.append('</annotation>')
    return '\n'.join(parts)


def write_detection(root: Path, scans: np.ndarray, labels: np.ndarray, pools: dict, counts: dict,
                    rng: np.random.Generator) -> None:
    voc = root / 'VOCdevkit' / 'VOC2007'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    number = 0
    for image_set in ('trainval', 'test'):
        ids = []
        for _ in range(counts[image_set]):
            img_id = f'{number:06d}'
            number += 1
            image, objects = paste_canvas(scans, labels, pools[image_set], rng)
            Image.fromarray(image).save(voc / 'JPEGImages' / f'{img_id}.jpg', quality=95)
            (voc / 'Annotations' / f'{img_id}.xml').write_text(voc_xml(img_id, objects))
            ids.append(img_id)
        (voc / 'ImageSets' / 'Main' / f'{image_set}.txt').write_text('\n'.join(ids) + '\n')


def make_demo_data(out_dir: str, det_trainval: int = 300, det_test: int = 100, cls_train: int = 0,
                   labelled_per_class: int = 20) -> Path:
    """Write (or reuse, when made with the same settings) the demo data under out_dir.

    ``cls_train`` > 0 keeps only that many training digits (the quick test profile)."""
    root = Path(out_dir)
    settings = dict(det_trainval=det_trainval, det_test=det_test, cls_train=cls_train,
                    labelled_per_class=labelled_per_class, version=2)
    marker = root / 'demo_data.json'
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    # Other settings: start afresh, or images of the old split would stay in the new one's folders.
    for made in ('digits', 'VOCdevkit'):
        shutil.rmtree(root / made, ignore_errors=True)
    scans, labels = load_digit_scans()
    train, val = split(labels)
    if cls_train:
        train = train[:cls_train]
    rng = np.random.default_rng(0)
    write_classification(root / 'digits', scans, labels, train, 'train', rng)
    write_classification(root / 'digits', scans, labels, val, 'val', rng)
    write_labelled_list(root / 'digits', labels, train, labelled_per_class)
    write_detection(root, scans, labels, dict(trainval=train, test=val),
                    dict(trainval=det_trainval, test=det_test), rng)
    marker.write_text(json.dumps(settings))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', nargs='?', default='data/demo')
    parser.add_argument('--det-trainval', type=int, default=300)
    parser.add_argument('--det-test', type=int, default=100)
    parser.add_argument('--labelled-per-class', type=int, default=20)
    args = parser.parse_args()
    root = make_demo_data(args.out_dir, args.det_trainval, args.det_test, labelled_per_class=args.labelled_per_class)
    print(f'demo data in {osp.abspath(root)}')


if __name__ == '__main__':
    main()
