"""Check that mmcv's ops in this install equal mmcv's compiled CPU kernels, or record the evidence.

    python tools/check_mmcv_ops.py [--device cuda]   # mmkd.ops (torchvision) vs the golden outputs
    python tools/check_mmcv_ops.py --record          # with compiled mmcv: rewrite the golden outputs
    python tools/check_mmcv_ops.py --device cuda --timing   # also: NMS time, mmkd vs torchvision

Prints, per op, the cases checked, NMS keep lists that differ and RoIAlign's largest absolute
differences; exits 1 when a keep list differs or RoIAlign differs by more than --atol (0 on the CPU,
where the ops are bit-identical; CUDA's bilinear sums may round differently, hence the option).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

import torch
import torchvision

import mmkd  # noqa: F401  (installs mmcv._ext from torchvision where mmcv has no compiled ops)
from mmkd.benchmark import timed_ms
from mmkd.ops import TorchvisionExt, mmcv_ops_backend
from mmkd.ops.equivalence import compare_to_golden, load_golden, record

GOLDEN = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tests', 'fixtures',
                  'mmcv_ops_golden.pt')


def print_nms_timing(device: torch.device) -> None:
    """mmkd's nms (mmcv's kernel exactly), its exact bit-matrix pass alone, and torchvision's nms on
    RPN-sized inputs, median ms."""
    from mmkd.ops.nms import CUDA_MODE_ENV, CUDA_MODES, greedy_nms
    ext = TorchvisionExt()
    kernel = 'cuda' if device.type == 'cuda' else 'cpu'
    generator = torch.Generator().manual_seed(0)
    for n in (1000, 4000, 10000):
        xy = torch.rand(n, 2, generator=generator) * 900
        boxes = torch.cat([xy, xy + 16 + torch.rand(n, 2, generator=generator) * 200], 1).to(device)
        scores = torch.rand(n, generator=generator).to(device)
        ours = {}
        for mode in CUDA_MODES:
            os.environ[CUDA_MODE_ENV] = mode
            ours[mode] = statistics.median(
                timed_ms(lambda: ext.nms(boxes, scores, iou_threshold=0.7, offset=0), device) for _ in range(11))
        exact = statistics.median(timed_ms(lambda: greedy_nms(boxes, 0.7, 0, kernel), device)
                                  for _ in range(11))
        theirs = statistics.median(timed_ms(lambda: torchvision.ops.nms(boxes, scores, 0.7), device)
                                   for _ in range(11))
        print(f'nms n={n} on {device}: mmkd fast {ours["fast"]:.2f} ms, exact {ours["exact"]:.2f} ms '
              f'(bit-matrix pass alone {exact:.2f} ms), torchvision {theirs:.2f} ms')
    os.environ.pop(CUDA_MODE_ENV)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', help='device the torchvision-backed ops run on')
    parser.add_argument('--golden', default=GOLDEN, help='golden outputs file')
    parser.add_argument('--atol', type=float, default=0.0, help='RoIAlign tolerance (0: bit-identical)')
    parser.add_argument('--record', action='store_true',
                        help='run the compiled kernels and rewrite --golden (needs compiled mmcv)')
    parser.add_argument('--timing', action='store_true',
                        help="time mmkd's nms against torchvision's on --device (RPN-sized inputs)")
    args = parser.parse_args()
    if args.timing:
        print_nms_timing(torch.device(args.device))
    if args.record:
        if mmcv_ops_backend() != 'compiled':
            sys.exit('--record needs mmcv with compiled ops (`make setup MMCV_OPS=compiled`) and '
                     'MMKD_MMCV_OPS unset; this install has ' + mmcv_ops_backend() + ' ops.')
        from mmcv import _ext
        golden = record(_ext, args.golden)
        print(f'wrote {args.golden}: {len(golden["nms"])} nms cases, {len(golden["roi_align"])} '
              f'roi_align cases, Faster R-CNN losses {golden["faster_rcnn"]["losses"]}')
        return 0
    report = compare_to_golden(TorchvisionExt(), load_golden(args.golden), args.device)
    print(json.dumps(dict(device=args.device, **report), indent=1))
    ok = report['nms_mismatches'] == 0 and max(
        report['roi_align_max_abs_diff'], report['roi_align_grad_max_abs_diff']) <= args.atol
    print('mmcv ops check:', 'OK' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
