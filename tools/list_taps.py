"""Every tap of a config's student (and teacher), with its shape at the config's input size.

    python tools/list_taps.py CONFIG [--teacher] [--shape H W] [--cfg-options k=v ...]

Builds the model(s) with random weights (no checkpoint needed), runs one dummy batch and prints
each tappable tensor as a config writes it: module outputs (every call of a module that runs
several times, every element of a tuple output) and ReLU inputs (pre-activations). Marks: '*' the
config's terms use it, '~' the other model has a tap of the same H x W (a pair for AT, NST, CWD...),
'.' one within a pixel each way (layers that round differently; the spatial losses resize).
Exits 1 if a tap the config uses does not exist.
"""
import argparse
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401  (registers mmkd's modules)
from mmkd.distill.tap_listing import list_taps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--teacher', action='store_true', help="also list the teacher's taps")
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: what the training pipeline produces)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmkd'))
    text, found = list_taps(cfg, with_teacher=args.teacher, size=tuple(args.shape) if args.shape else None)
    print(text)
    return 1 if found['missing'] else 0


if __name__ == '__main__':
    sys.exit(main())
