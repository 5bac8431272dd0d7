"""Check a dataset before training on it: one line per bad file, exit 1 when anything is wrong.

    python tools/check_data.py voc data/VOCdevkit [--years 2007 2012] [--sets trainval test] [--classes ...]
    python tools/check_data.py imagenet data/imagenet [--splits train val] [--ann-file meta/train.txt]
    python tools/check_data.py cifar data/cifar10 [--variant cifar100]

Images are decoded in full (truncated and zero-byte files are found); VOC annotations are parsed and
their sizes, class names and boxes checked; list-file entries must exist; CIFAR batches are read as
training reads them and their labels checked.
"""
import argparse
import sys
from typing import Dict, List

from mmkd.datasets.checks import VOC_CLASSES, check_cifar, check_imagenet, check_voc


def report(faults: Dict[str, List[str]]) -> int:
    total = sum(len(v) for v in faults.values())
    for kind, details in sorted(faults.items()):
        for detail in details:
            print(f'{kind}: {detail}')
    print(f'{total} problem(s)' if total else 'no problems found')
    return 1 if total else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest='kind', required=True)
    voc = kinds.add_parser('voc', help='a VOCdevkit folder (holding VOC2007/, VOC2012/)')
    voc.add_argument('root')
    voc.add_argument('--years', nargs='+', default=['2007'])
    voc.add_argument('--sets', nargs='+', default=['trainval', 'test'])
    voc.add_argument('--classes', nargs='+', default=list(VOC_CLASSES), help="default: VOC's 20")
    imagenet = kinds.add_parser('imagenet', help='ImageNet folders (<split>/<class>/*.JPEG) or a list file')
    imagenet.add_argument('root')
    imagenet.add_argument('--splits', nargs='+', default=['train', 'val'])
    imagenet.add_argument('--ann-file', default='', help="list file, lines 'relative/path label'")
    cifar = kinds.add_parser('cifar', help='the official CIFAR python batches')
    cifar.add_argument('root')
    cifar.add_argument('--variant', choices=['cifar10', 'cifar100'], default='cifar10')
    args = parser.parse_args()
    if args.kind == 'voc':
        faults = check_voc(args.root, args.years, args.sets, args.classes)
    elif args.kind == 'imagenet':
        faults = {}
        for split in args.splits:
            for kind, details in check_imagenet(args.root, split, args.ann_file).items():
                faults.setdefault(kind, []).extend(details)
    else:
        faults = check_cifar(args.root, args.variant)
    return report(faults)


if __name__ == '__main__':
    sys.exit(main())
