"""Whole-dataset checks before training: every image fully decoded, every annotation parsed.

``tools/check_data.py`` runs them; each returns a dict ``fault kind -> ['path: detail', ...]``.
``Image.verify()`` misses truncated JPEGs, so images are decoded in full (``Image.load()``).
"""
import os
import os.path as osp
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.utils import ProgressBar
from PIL import Image

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')
IMAGE_EXTENSIONS = ('.jpeg', '.jpg', '.png')
Faults = Dict[str, List[str]]


def decode_image(path: str) -> Tuple[int, int]:
    """(width, height) of an image decoded in full; raises for empty, truncated or corrupt files."""
    if osp.getsize(path) == 0:
        raise OSError('empty file (0 bytes)')
    with Image.open(path) as img:
        img.load()  # decodes every pixel: a truncated file raises "image file is truncated"
        return img.size


def _each(items: Sequence, check: Callable, progress: bool) -> None:
    bar = ProgressBar(len(items)) if progress and items else None
    for item in items:
        check(item)
        if bar is not None:
            bar.update()
    if bar is not None:
        print()


def _check_image(path: str, faults: Faults) -> Optional[Tuple[int, int]]:
    if not osp.isfile(path):
        faults['missing image'].append(path)
        return None
    try:
        return decode_image(path)
    except Exception as error:  # PIL raises many kinds for a broken file
        faults['unreadable image'].append(f'{path}: {error}')
        return None


def check_voc_annotation(xml_path: str, image_size: Optional[Tuple[int, int]],
                         classes: Sequence[str] = VOC_CLASSES) -> List[Tuple[str, str]]:
    """(fault kind, detail) for one annotation file; image_size is (width, height) or None."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as error:
        return [('unreadable XML', f'{xml_path}: {error}')]
    faults = []
    size = root.find('size')
    try:
        width, height = int(size.find('width').text), int(size.find('height').text)
    except (AttributeError, TypeError, ValueError):
        return [('unreadable XML', f'{xml_path}: no <size><width>/<height>')]
    if image_size is not None and image_size != (width, height):
        faults.append(('size mismatch', f'{xml_path}: XML says {width}x{height}, image is '
                                        f'{image_size[0]}x{image_size[1]}'))
    for index, obj in enumerate(root.findall('object')):
        name = obj.findtext('name', '').strip()
        if name not in classes:
            faults.append(('unknown class', f'{xml_path}: object {index} is {name!r}'))
        box = obj.find('bndbox')
        try:
            x1, y1, x2, y2 = (float(box.find(k).text) for k in ('xmin', 'ymin', 'xmax', 'ymax'))
        except (AttributeError, TypeError, ValueError):
            faults.append(('unreadable XML', f'{xml_path}: object {index} has no valid <bndbox>'))
            continue
        # VOC boxes are 1-based pixel indices: 1 <= xmin < xmax <= width.
        if not (1 <= x1 < x2 <= width and 1 <= y1 < y2 <= height):
            faults.append(('box outside image', f'{xml_path}: object {index} ({name}) box '
                                                f'({x1:g}, {y1:g}, {x2:g}, {y2:g}) in {width}x{height}'))
    return faults


def check_voc(devkit: str, years: Iterable[str] = ('2007', ), sets: Iterable[str] = ('trainval', 'test'),
              classes: Sequence[str] = VOC_CLASSES, progress: bool = True) -> Faults:
    """Every image set of ``devkit/VOC<year>``: set files, images, annotation XML."""
    faults: Faults = defaultdict(list)
    for year in years:
        for image_set in sets:
            if year == '2012' and image_set == 'test':
                continue  # VOC2012 test has no public labels
            root = osp.join(devkit, f'VOC{year}')
            set_file = osp.join(root, 'ImageSets', 'Main', f'{image_set}.txt')
            if not osp.isfile(set_file):
                faults['missing image set'].append(set_file)
                continue
            with open(set_file) as f:
                ids = [line.split()[0] for line in f if line.strip()]
            if not ids:
                faults['empty image set'].append(set_file)
                continue
            print(f'VOC{year} {image_set}: {len(ids)} images')

            def check(img_id):
                size = _check_image(osp.join(root, 'JPEGImages', f'{img_id}.jpg'), faults)
                xml_path = osp.join(root, 'Annotations', f'{img_id}.xml')
                if not osp.isfile(xml_path):
                    faults['missing annotation'].append(xml_path)
                    return
                for kind, detail in check_voc_annotation(xml_path, size, classes):
                    faults[kind].append(detail)

            _each(ids, check, progress)
    return faults


def check_imagenet(root: str, split: str = 'train', ann_file: str = '', progress: bool = True) -> Faults:
    """``root/<split>/<class>/*.JPEG``, or the images a list file (``relative/path label``) names."""
    faults: Faults = defaultdict(list)
    image_dir = osp.join(root, split)
    if ann_file:
        list_file = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
        if not osp.isfile(list_file):
            faults['missing list file'].append(list_file)
            return faults
        paths = []
        with open(list_file) as f:
            for number, line in enumerate(f, start=1):
                parts = line.rsplit(maxsplit=1)
                if not line.strip():
                    continue
                if len(parts) != 2 or not parts[1].isdigit():
                    faults['bad list line'].append(f'{list_file}:{number}: {line.strip()!r}')
                    continue
                paths.append(osp.join(image_dir, parts[0]))
    elif not osp.isdir(image_dir):
        faults['missing split folder'].append(image_dir)
        return faults
    else:
        classes = sorted(d for d in os.listdir(image_dir) if osp.isdir(osp.join(image_dir, d)))
        if not classes:
            faults['no class folders'].append(image_dir)
        paths = []
        for cls in classes:
            names = [n for n in sorted(os.listdir(osp.join(image_dir, cls)))
                     if n.lower().endswith(IMAGE_EXTENSIONS)]
            if not names:
                faults['empty class folder'].append(osp.join(image_dir, cls))
            paths += [osp.join(image_dir, cls, n) for n in names]
    print(f'{image_dir}: {len(paths)} images')

    def check(path):
        if _check_image(path, faults) is not None and path.lower().endswith(('.jpeg', '.jpg')):
            with Image.open(path) as img:
                if img.format != 'JPEG':   # ImageNet's train set holds a PNG named .JPEG
                    faults['not a JPEG'].append(f'{path}: {img.format} data (device decoding reads it on the CPU; '
                                                'convert it to JPEG to silence this)')

    _each(paths, check, progress)
    return faults


def check_cifar(root: str, variant: str = 'cifar10') -> Faults:
    """The official python batches, read as the dataset reads them, and every label in range."""
    from .cifar import CIFAR10, CIFAR100
    dataset_type = dict(cifar10=CIFAR10, cifar100=CIFAR100)[variant]
    faults: Faults = defaultdict(list)
    for split in ('train', 'test'):
        try:
            dataset = dataset_type(data_root=root, split=split, lazy_init=False, serialize_data=False)
        except (OSError, ValueError) as error:
            faults['unreadable batch'].append(str(error))
            continue
        num_classes = len(dataset.metainfo['classes'])
        bad = [i for i, item in enumerate(dataset.data_list) if not 0 <= item['gt_label'] < num_classes]
        if bad:
            faults['label out of range'].append(
                f'{root}/{dataset_type.folder} {split}: {len(bad)} labels outside [0, {num_classes}), '
                f'first at index {bad[0]}')
        print(f'{variant} {split}: {len(dataset)} images')
    return faults
