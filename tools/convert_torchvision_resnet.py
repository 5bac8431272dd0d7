"""Convert a torchvision ImageNet ResNet checkpoint into an mmkd ImageClassifier checkpoint.

    python tools/convert_torchvision_resnet.py resnet101-63fe2227.pth data/pretrained/resnet101.pth

mmdet's ResNet uses torchvision's parameter names, so the backbone keys only gain ``backbone.``;
``fc.*`` becomes ``head.*``. The output is what the ImageNet configs' ``teacher.checkpoint`` and
``tools/test.py`` expect. Nothing is downloaded: pass the file you have.
"""
import argparse
import os.path as osp

import torch

from mmkd.checkpoints import convert_torchvision_resnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='torchvision checkpoint (a state dict)')
    parser.add_argument('dst', help='output checkpoint for mmkd')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'{args.src}: no such file.')
    state_dict = torch.load(args.src, map_location='cpu', weights_only=True)
    state_dict = state_dict.get('state_dict', state_dict)
    torch.save(dict(state_dict=convert_torchvision_resnet(state_dict), meta=dict(converted_from=osp.basename(args.src))), args.dst)
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
