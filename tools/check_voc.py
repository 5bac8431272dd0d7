"""Check a VOCdevkit tree before training on it.

    python tools/check_voc.py data/VOCdevkit [--years 2007 2012] [--sets trainval test]

For every image set it reports missing or empty ImageSets/Main/<set>.txt files, missing or
unreadable images, missing or unreadable annotation XML, image sizes that disagree with the XML,
unknown class names and boxes outside the image or with xmin >= xmax. Exits 1 when anything is wrong.
"""
import argparse
import os.path as osp
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

from mmengine.utils import ProgressBar
from PIL import Image

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


def check_annotation(xml_path: str, image_size: Tuple[int, int],
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


def image_size_of(path: str):
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        return img.size


def check_set(devkit: str, year: str, image_set: str, faults: Dict[str, List[str]],
              classes: Sequence[str] = VOC_CLASSES) -> int:
    root = osp.join(devkit, f'VOC{year}')
    set_file = osp.join(root, 'ImageSets', 'Main', f'{image_set}.txt')
    if not osp.isfile(set_file):
        faults['missing image set'].append(set_file)
        return 0
    with open(set_file) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    if not ids:
        faults['empty image set'].append(set_file)
        return 0
    print(f'VOC{year} {image_set}: {len(ids)} images')
    progress = ProgressBar(len(ids))
    for img_id in ids:
        image_path = osp.join(root, 'JPEGImages', f'{img_id}.jpg')
        image_size = None
        if not osp.isfile(image_path):
            faults['missing image'].append(image_path)
        else:
            try:
                image_size = image_size_of(image_path)
            except Exception as error:  # PIL raises many kinds for a broken file
                faults['unreadable image'].append(f'{image_path}: {error}')
        xml_path = osp.join(root, 'Annotations', f'{img_id}.xml')
        if not osp.isfile(xml_path):
            faults['missing annotation'].append(xml_path)
        else:
            for kind, detail in check_annotation(xml_path, image_size, classes):
                faults[kind].append(detail)
        progress.update()
    print()
    return len(ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('devkit', help='the VOCdevkit folder (holding VOC2007/, VOC2012/)')
    parser.add_argument('--years', nargs='+', default=['2007'], help='default: 2007')
    parser.add_argument('--sets', nargs='+', default=['trainval', 'test'], help='default: trainval test')
    parser.add_argument('--classes', nargs='+', default=list(VOC_CLASSES),
                        help="the dataset's class names (default: VOC's 20)")
    parser.add_argument('--show', type=int, default=5, help='examples listed per kind of fault')
    args = parser.parse_args()
    if not osp.isdir(args.devkit):
        print(f'{args.devkit}: no such folder (expected VOCdevkit/VOC<year>/...)', file=sys.stderr)
        return 1
    faults: Dict[str, List[str]] = defaultdict(list)
    checked = sum(check_set(args.devkit, year, image_set, faults, args.classes)
                  for year in args.years for image_set in args.sets
                  if not (year == '2012' and image_set == 'test'))  # VOC2012 test has no public labels
    total = sum(len(v) for v in faults.values())
    print(f'checked {checked} images: {"no problems found" if not total else f"{total} problem(s)"}')
    for kind, details in sorted(faults.items()):
        print(f'  {kind}: {len(details)}')
        for detail in details[:args.show]:
            print(f'    {detail}')
        if len(details) > args.show:
            print(f'    ... {len(details) - args.show} more')
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
