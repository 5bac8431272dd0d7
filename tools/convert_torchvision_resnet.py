"""Convert a torchvision ImageNet ResNet checkpoint into an mmkd ImageClassifier checkpoint.

    python tools/convert_torchvision_resnet.py resnet101-63fe2227.pth data/pretrained/resnet101.pth

mmdet's ResNet uses torchvision's parameter names, so the backbone keys only gain ``backbone.``;
``fc.*`` becomes ``head.*``. The output is what the ImageNet configs' ``teacher.checkpoint`` and
``tools/test.py`` expect. Nothing is downloaded: pass the file you have.
"""
import argparse
import os.path as osp
from collections import OrderedDict

import torch


def convert(state_dict: dict) -> OrderedDict:
    if 'fc.weight' not in state_dict or 'layer4.0.conv1.weight' not in state_dict:
        raise ValueError('not a torchvision ResNet state dict: fc.weight / layer4.0.conv1.weight missing.')
    return OrderedDict((('head.' + k[3:]) if k.startswith('fc.') else 'backbone.' + k, v)
                       for k, v in state_dict.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='torchvision checkpoint (a state dict)')
    parser.add_argument('dst', help='output checkpoint for mmkd')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'{args.src}: no such file.')
    state_dict = torch.load(args.src, map_location='cpu', weights_only=True)
    state_dict = state_dict.get('state_dict', state_dict)
    torch.save(dict(state_dict=convert(state_dict), meta=dict(converted_from=osp.basename(args.src))), args.dst)
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
