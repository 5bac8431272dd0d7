"""Write the student of a ``mmkd.Distiller`` checkpoint as a checkpoint of its own.

    python tools/extract_student.py work_dirs/kd/epoch_100.pth student.pth

The output holds ``state_dict`` with the student's keys (``backbone.*``, ``head.*``, ...), so a
detector can start from it::

    backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint='student.pth', prefix='backbone.'))

Connectors and the optimizer state are dropped; the teacher was never saved.
"""
import argparse
import os.path as osp

import torch

from mmkd import allow_mmengine_checkpoints
from mmkd.checkpoints import extract_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='checkpoint of a mmkd.Distiller run')
    parser.add_argument('out', help='where to write the student-only checkpoint')
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint}: no such file.')
    allow_mmengine_checkpoints()
    student = extract_student(torch.load(args.checkpoint, map_location='cpu', weights_only=True))
    torch.save(student, args.out)
    print(f'wrote {len(student["state_dict"])} student tensors to {args.out}')


if __name__ == '__main__':
    main()
