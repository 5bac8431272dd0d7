"""Forward+backward time and peak memory of mmkd's losses next to the straightforward batched form.

    python tools/benchmark_losses.py [--repeats 3] [--shapes 0 1 2] [--device cuda] [--out docs/benchmarks_losses.md]

Shapes (B, C_S, C_T, H x W): the NST paper's ImageNet tap, a ResNet stage-1 map, a detection-size
map. The baseline for NST is the batched C x C' Gram-matrix formulation; for the other losses the
textbook one-liner (for CWD, PKD, DKD, DIST and RKD: the authors' or mmrazor's published form). Peak memory is the rise of the process's resident set (Linux VmHWM, reset
before each measurement) over its size before the call; glibc is told to return large blocks
to the system at once so that every measurement starts from the same state.
"""
import argparse
import gc
import os
import platform
import statistics
import sys
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

import mmkd  # noqa: F401
from mmkd.benchmark import peak_mib, timed_ms
from mmkd.registry import MODELS

SHAPES = [(32, 1024, 2048, 7, 7), (8, 256, 256, 56, 56), (2, 256, 256, 100, 168)]
NUM_CLASSES = 1000


# ------------------------------------------------------------------ straightforward forms
def naive_nst(kernel: str) -> Callable:
    def loss(s, t):
        x = F.normalize(s.flatten(2), dim=2)
        y = F.normalize(t.detach().flatten(2), dim=2)
        if kernel == 'gaussian':
            z = torch.cat([x, y], dim=1)
            n = z.shape[1]
            sigma2 = (torch.cdist(z, z) ** 2).sum(dim=(1, 2)).detach().view(-1, 1, 1) / (n * n - n)

            def k(a, b):
                return torch.exp(-torch.cdist(a, b) ** 2 / (2 * sigma2))
        elif kernel == 'poly':
            def k(a, b):
                return torch.bmm(a, b.transpose(1, 2)) ** 2
        else:
            def k(a, b):
                return torch.bmm(a, b.transpose(1, 2))
        mmd = k(x, x).mean(dim=(1, 2)) + k(y, y).mean(dim=(1, 2)) - 2 * k(x, y).mean(dim=(1, 2))
        return mmd.mean()

    return loss


def naive_at(s, t):
    def q(x):
        return F.normalize(x.pow(2).mean(1).view(x.size(0), -1))

    return (q(s) - q(t.detach())).pow(2).mean()


def naive_fsp(s1, s2, t1, t2):
    def g(a, b):
        a = F.adaptive_avg_pool2d(a, b.shape[-2:])
        return torch.einsum('nchw,ndhw->ncd', a, b) / (b.shape[2] * b.shape[3])

    return (g(s1, s2) - g(t1.detach(), t2.detach())).pow(2).sum() / s1.shape[0]


def naive_ab(s, t, m=1.0):
    t = t.detach()
    loss = ((s + m).pow(2) * ((s > -m) & (t <= 0)).float()
            + (s - m).pow(2) * ((s <= m) & (t > 0)).float())
    return loss.sum() / s.shape[0]


def naive_kd(s, t, temperature=4.0):
    p_t = F.softmax(t.detach() / temperature, dim=1)
    return F.kl_div(F.log_softmax(s / temperature, dim=1), p_t, reduction='batchmean') * temperature ** 2


def naive_fitnet(s, t):
    return F.mse_loss(s, t.detach())


def naive_cwd(s, t, tau=1.0):
    n, c, h, w = s.shape
    t = t.detach().reshape(-1, h * w) / tau
    p_t = F.softmax(t, dim=1)
    return (p_t * (F.log_softmax(t, dim=1) - F.log_softmax(s.reshape(-1, h * w) / tau, dim=1))).sum() * tau ** 2 / (n * c)


def naive_pkd(s, t):
    def norm(x):
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        return (flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + 1e-6)

    return F.mse_loss(norm(s), norm(t.detach())) / 2


def naive_mgd(s, t):
    return 2e-5 * F.mse_loss(s, t.detach(), reduction='sum') / s.shape[0]


def naive_dkd(s, t, labels, alpha=1.0, beta=8.0, temperature=4.0):
    gt = F.one_hot(labels, s.shape[1]).bool()
    p_s, p_t = F.softmax(s / temperature, 1), F.softmax(t.detach() / temperature, 1)
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], 1)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], 1)
    tckd = F.kl_div(torch.log(b_s), b_t, reduction='batchmean')
    nckd = F.kl_div(F.log_softmax(s / temperature - 1000.0 * gt, 1),
                    F.softmax(t.detach() / temperature - 1000.0 * gt, 1), reduction='batchmean')
    return temperature ** 2 * (alpha * tckd + beta * nckd)


def naive_dist(s, t, tau=1.0):
    def corr(a, b):
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)).mean()

    y_s, y_t = F.softmax(s / tau, 1), F.softmax(t.detach() / tau, 1)
    return tau ** 2 * ((1 - corr(y_s, y_t)) + (1 - corr(y_s.t(), y_t.t())))


def naive_rkd(s, t, wd=25.0, wa=50.0):
    s, t = s.flatten(1), t.detach().flatten(1)

    def dist(e):   # the authors' pdist: squared distances from the Gram matrix, diagonal set to 0
        sq = e.pow(2).sum(1)
        d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=1e-12).sqrt().clone()
        d[range(len(e)), range(len(e))] = 0
        return d / d[d > 0].mean()

    def angle(e):
        u = F.normalize(e[None] - e[:, None], dim=2)
        return torch.bmm(u, u.transpose(1, 2))

    return wd * F.smooth_l1_loss(dist(s), dist(t)) + wa * F.smooth_l1_loss(angle(s), angle(t))


# ------------------------------------------------------------------ measurement
def fwd_bwd(loss_fn: Callable, inputs: List[torch.Tensor]) -> float:
    value = loss_fn(*inputs)
    value.backward()
    for x in inputs:
        x.grad = None
    return value.item()


def measure(loss_fn: Callable, make_inputs: Callable, repeats: int,
            device: torch.device = torch.device('cpu')) -> Tuple[float, float, float]:
    """(median ms, peak extra MiB, value) of forward+backward on ``device``."""
    inputs = [x.detach().to(device).requires_grad_(x.requires_grad) for x in make_inputs()]
    fwd_bwd(loss_fn, inputs)  # warm-up
    values = []
    peak = peak_mib(lambda: values.append(fwd_bwd(loss_fn, inputs)), device)
    value = values[0]
    times = [timed_ms(lambda: fwd_bwd(loss_fn, inputs), device) for _ in range(repeats)]
    del inputs
    gc.collect()
    return statistics.median(times), peak, value


def gram_matmuls(s, t):
    """The matrix products NST-gaussian cannot avoid: the three channel Gram matrices of the
    flattened maps, forward and backward (the teacher's without gradient): its floor."""
    x, y = s.flatten(2), t.detach().flatten(2)
    return (torch.bmm(x, x.transpose(1, 2)).sum() + torch.bmm(y, y.transpose(1, 2)).sum()
            + torch.bmm(x, y.transpose(1, 2)).sum())


def cases(shape) -> Dict[str, Tuple[Callable, Callable, Callable]]:
    b, c_s, c_t, h, w = shape

    def randn(gen, *size, grad):
        return torch.randn(*size, generator=gen).requires_grad_(grad)

    # Each call starts from the same seed, so that mmkd and the baseline see the same inputs.
    def feats():
        gen = torch.Generator().manual_seed(0)
        return [randn(gen, b, c_s, h, w, grad=True), randn(gen, b, c_t, h, w, grad=False)]

    def same_shape():
        gen = torch.Generator().manual_seed(0)
        return [randn(gen, b, c_t, h, w, grad=True), randn(gen, b, c_t, h, w, grad=False)]

    def fsp_pairs():
        gen = torch.Generator().manual_seed(0)
        half = ((h + 1) // 2, (w + 1) // 2)
        return [randn(gen, b, c_s, h, w, grad=True), randn(gen, b, c_s, *half, grad=True),
                randn(gen, b, c_s, h, w, grad=False), randn(gen, b, c_s, *half, grad=False)]

    def logits():
        gen = torch.Generator().manual_seed(0)
        return [randn(gen, b, NUM_CLASSES, grad=True), randn(gen, b, NUM_CLASSES, grad=False)]

    def labelled_logits():
        gen = torch.Generator().manual_seed(0)
        return [randn(gen, b, NUM_CLASSES, grad=True), randn(gen, b, NUM_CLASSES, grad=False),
                torch.randint(0, NUM_CLASSES, (b,), generator=gen)]

    def mmkd(**cfg):
        return MODELS.build(cfg)

    return {
        'NST-poly': (mmkd(type='NSTLoss', kernel='poly'), naive_nst('poly'), feats),
        'NST-linear': (mmkd(type='NSTLoss', kernel='linear'), naive_nst('linear'), feats),
        'NST-gaussian': (mmkd(type='NSTLoss', kernel='gaussian'), naive_nst('gaussian'), feats),
        'AT': (mmkd(type='ATLoss'), naive_at, feats),
        'FSP': (mmkd(type='FSPLoss'), naive_fsp, fsp_pairs),
        'FitNet': (mmkd(type='FitNetLoss'), naive_fitnet, same_shape),
        'AB': (mmkd(type='ABLoss'), naive_ab, same_shape),
        'KD': (mmkd(type='KDLoss'), naive_kd, logits),
        'CWD': (mmkd(type='CWDLoss'), naive_cwd, same_shape),
        'PKD': (mmkd(type='PKDLoss'), naive_pkd, same_shape),
        'MGD': (mmkd(type='MGDLoss'), naive_mgd, same_shape),
        'DKD': (mmkd(type='DKDLoss'), naive_dkd, labelled_logits),
        'DIST': (mmkd(type='DISTLoss'), naive_dist, logits),
        'RKD': (mmkd(type='RKDLoss'), naive_rkd, feats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--shapes', type=int, nargs='+', default=list(range(len(SHAPES))),
                        help='indices into the shape list')
    parser.add_argument('--losses', nargs='+', help='only these losses (e.g. NST-poly AT)')
    parser.add_argument('--out', help='also write the Markdown table to this file')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == 'cpu' and os.environ.get('MALLOC_MMAP_THRESHOLD_') is None:
        os.environ['MALLOC_MMAP_THRESHOLD_'] = '65536'  # must be set before the process starts
        os.execv(sys.executable, [sys.executable, *sys.argv])

    lines = [
        f'torch {torch.__version__}, ' + (torch.cuda.get_device_name(device) if device.type == 'cuda' else
                                          f'{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}') +
        f', median of {args.repeats} forward+backward passes; float32 {args.device}.',
        '',
        '| shape (B, C_S, C_T, HxW) | loss | mmkd ms | baseline ms | speed-up | mmkd MiB | baseline MiB |',
        '|---|---|---:|---:|---:|---:|---:|',
    ]
    print('\n'.join(lines), flush=True)
    measured = {}
    for index in args.shapes:
        shape = SHAPES[index]
        b, c_s, c_t, h, w = shape
        for name, (ours, baseline, make_inputs) in cases(shape).items():
            if args.losses and name not in args.losses:
                continue
            ours_ms, ours_mib, ours_value = measure(ours, make_inputs, args.repeats, device)
            measured[name, shape] = ours_ms, ours_mib, make_inputs
            base_ms, base_mib, base_value = measure(baseline, make_inputs, args.repeats, device)
            if abs(ours_value - base_value) > 1e-3 * max(abs(base_value), 1e-6):
                raise RuntimeError(f'{name} at {shape}: mmkd {ours_value} != baseline {base_value}')
            row = (f'| ({b}, {c_s}, {c_t}, {h}x{w}) | {name} | {ours_ms:.1f} | {base_ms:.1f} | '
                   f'{base_ms / ours_ms:.1f}x | {ours_mib:.0f} | {base_mib:.0f} |')
            lines.append(row)
            print(row, flush=True)
    floor = ['', '| shape | NST-gaussian ms | its Gram matmuls ms | ratio | NST-gaussian MiB | NST-poly MiB | ratio |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for (name, shape), (ms, mib, make_inputs) in measured.items():
        if name == 'NST-gaussian' and ('NST-poly', shape) in measured:
            floor_ms = measure(gram_matmuls, make_inputs, args.repeats, device)[0]
            poly_mib = measured['NST-poly', shape][1]
            b, c_s, c_t, h, w = shape
            floor.append(f'| ({b}, {c_s}, {c_t}, {h}x{w}) | {ms:.1f} | {floor_ms:.1f} | {ms / floor_ms:.2f}x | '
                         f'{mib:.0f} | {poly_mib:.0f} | {mib / max(poly_mib, 1):.2f}x |')
    if len(floor) > 3:
        lines += floor
        print('\n'.join(floor), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
