"""mmkd.ops: mmcv's compiled ops from torchvision, equal to mmcv's compiled kernels.

Each equality is checked against golden outputs recorded from the compiled kernels
(tests/fixtures/mmcv_op_cases.py), and, where this install has compiled ops (MMCV_OPS=compiled),
against the live kernels on fresh inputs too. mmcv has RoIPool and the sigmoid focal loss only on
CUDA: those are checked against a line-by-line float64 port of the CUDA kernel and against mmdet's
Python focal loss.
"""
import inspect
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision

import mmkd  # noqa: F401  (installs mmcv._ext where mmcv has no compiled ops)
from mmkd.ops import CompiledOpsRequired, TorchvisionExt, mmcv_ops_backend
from mmkd.ops import nms as nms_module
from mmkd.ops.equivalence import (compare_to_golden, faster_rcnn_model, faster_rcnn_step, load_golden, nms_cases,
                                  nms_reference, roi_align_cases, run_nms, run_roi_align)

# Every test here compares with golden outputs or across kernels.
pytestmark = pytest.mark.numerics

GOLDEN = osp.join(osp.dirname(osp.abspath(__file__)), 'fixtures', 'mmcv_ops_golden.pt')

SHIM = TorchvisionExt()
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device: tools/gpu_smoke.sh runs these on a GPU'))]


@pytest.fixture(scope='module')
def golden():
    return load_golden(GOLDEN)


def compiled_ext():
    if mmcv_ops_backend() != 'compiled':
        pytest.skip('mmcv has no compiled ops in this install (MMCV_OPS=torchvision): checked against '
                    'the golden outputs instead')
    from mmcv import _ext
    return _ext


@pytest.fixture
def shim_in_mmcv(monkeypatch):
    """mmcv.ops' Python side (autograd Functions, score threshold, batched_nms) over mmkd's ops."""
    import mmcv.ops  # noqa: F401
    for module in ('nms', 'roi_align', 'roi_pool', 'focal_loss'):
        monkeypatch.setattr(sys.modules[f'mmcv.ops.{module}'], 'ext_module', SHIM)


def test_nms_equals_golden_compiled_outputs(golden):
    assert len(golden['nms']) == len(nms_cases())
    plain_torchvision_differs = 0
    for case, expected in golden['nms']:
        assert torch.equal(run_nms(SHIM, case), expected), case[2:]
        boxes, scores, threshold, offset = case
        if offset == 0 and len(boxes):
            plain = torchvision.ops.nms(boxes, scores, threshold)
            plain_torchvision_differs += not torch.equal(plain, expected)
    # The cases reach what plain torchvision gets wrong (float64 threshold, order of equal scores).
    assert plain_torchvision_differs > 0


def test_nms_reference_port_equals_compiled_cpu_kernel(golden):
    # The numpy port of mmcv's kernels is the reference on CUDA, where no compiled output is recorded.
    assert all(torch.equal(nms_reference(case, 'cpu', 'cpu'), keep) for case, keep in golden['nms'])


@pytest.mark.parametrize('offset', [0, 1])
def test_greedy_nms_follows_each_kernels_overlap_test(golden, monkeypatch, offset):
    """The blocked bit-matrix pass (CUDA's path, and offset=1 on the CPU) against the numpy port, for
    both kernels' tests, with blocks of a few rows so that block and byte edges are crossed."""
    monkeypatch.setattr(nms_module, '_BLOCK_ELEMENTS', 64)
    rng = np.random.default_rng(5)
    cases = [case for case, _ in golden['nms'] if case[3] == offset and len(case[0])]
    cases += [(torch.from_numpy(rng.integers(0, 40, (n, 2)).repeat(2, 1) + np.c_[
        np.zeros((n, 2)), rng.integers(0, 20, (n, 2))]).float(),
        torch.from_numpy(rng.uniform(0, 1, n)).float(), t, offset)
        for n in (9, 61, 130) for t in (0.5, 0.7)]
    forms_differ = 0
    for boxes, scores, threshold, _ in cases:
        order = scores.sort(0, descending=True)[1]
        for kernel in ('cpu', 'cuda'):
            keep = order[nms_module.greedy_nms(boxes[order], np.float32(threshold), offset, kernel)]
            assert torch.equal(keep, nms_reference((boxes, scores, threshold, offset), 'cpu', kernel))
        forms_differ += not torch.equal(nms_reference((boxes, scores, threshold, offset), 'cpu', 'cpu'),
                                        nms_reference((boxes, scores, threshold, offset), 'cpu', 'cuda'))
    # Integer boxes reach IoUs on the threshold, where the two kernels' tests disagree.
    assert forms_differ > 0


def test_cuda_fast_path_check_is_sound(golden):
    """On CUDA, torchvision's result is taken only where no pair gets different answers from the two
    kernels' tests; where that check passes, the two kernels keep the same boxes."""
    refused = 0
    for case, _ in golden['nms']:
        boxes, scores, threshold, offset = case
        if offset or not len(boxes):
            continue
        order = scores.sort(0, descending=True)[1]
        if nms_module._tests_agree(boxes[order], np.float32(threshold)):
            assert torch.equal(nms_reference(case, 'cpu', 'cpu'), nms_reference(case, 'cpu', 'cuda'))
        else:
            refused += 1
    assert refused > 0  # the integer-box cases reach the exact pass


@pytest.mark.parametrize('mode', nms_module.CUDA_MODES)
@pytest.mark.parametrize('device', DEVICES)
def test_golden_comparison_on_device(golden, device, mode, monkeypatch):
    monkeypatch.setenv(nms_module.CUDA_MODE_ENV, mode)   # MMKD_NMS_CUDA: no effect on the CPU
    report = compare_to_golden(SHIM, golden, device)
    assert report['nms_mismatches'] == 0
    # Bit-identical on the CPU; CUDA's bilinear sums may round in another order.
    tolerance = 0.0 if device == 'cpu' else 1e-5
    assert report['roi_align_max_abs_diff'] <= tolerance
    assert report['roi_align_grad_max_abs_diff'] <= tolerance


def test_nms_equals_live_compiled_kernel():
    compiled = compiled_ext()
    rng = np.random.default_rng(2024)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        xy = rng.integers(0, 50, (n, 2))
        boxes = torch.from_numpy(np.concatenate([xy, xy + rng.integers(1, 30, (n, 2))], 1)).float()
        scores = torch.from_numpy(rng.integers(0, 8, n) / 8).float()
        for offset in (0, 1):
            case = (boxes, scores, float(rng.choice([0.3, 0.5, 0.6, 0.7])), offset)
            assert torch.equal(run_nms(SHIM, case), run_nms(compiled, case))


def test_roi_align_equals_golden_compiled_outputs(golden):
    assert len(golden['roi_align']) == len(roi_align_cases())
    for case, (output, grad_input) in golden['roi_align']:
        ours, our_grad = run_roi_align(SHIM, case)
        assert torch.equal(ours, output) and torch.equal(our_grad, grad_input), case[3:]
    assert any(output.abs().sum() > 0 for _, (output, _) in golden['roi_align'])


def test_roi_align_equals_live_compiled_kernel():
    compiled = compiled_ext()
    for case in roi_align_cases():
        for ours, theirs in zip(run_roi_align(SHIM, case), run_roi_align(compiled, case)):
            assert torch.equal(ours, theirs)


@pytest.mark.parametrize('device', DEVICES)
def test_nms_through_mmcv_wrappers(shim_in_mmcv, device):
    from mmcv.ops import batched_nms, nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9],
                          [21, 21, 30, 30]], dtype=torch.float32, device=device)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.05], device=device)
    # Box 3 (0.95) suppresses 0 (IoU 0.9) and 1 (IoU 0.65 with 3); box 2 is disjoint; 4 overlaps 2.
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [3, 2]
    torch.testing.assert_close(dets[:, 4].cpu(), torch.tensor([0.95, 0.7]))
    assert nms(boxes, scores, 0.5, max_num=1)[1].tolist() == [3]
    assert nms(boxes, scores, 0.99, score_threshold=0.75)[1].tolist() == [3, 0, 1]
    # Two classes: box 4 is class 1, so box 2 (class 0) cannot suppress it.
    dets, keep = batched_nms(boxes, scores, torch.tensor([0, 0, 0, 0, 1], device=device),
                             dict(type='nms', iou_threshold=0.5))
    assert keep.tolist() == [3, 2, 4]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_roi_align_half_inputs_compute_in_float32(shim_in_mmcv, dtype):
    from mmcv.ops import roi_align
    features = torch.randn(1, 2, 12, 12)
    rois = torch.tensor([[0, 1.0, 2.0, 9.5, 8.0]])
    half = roi_align(features.to(dtype), rois.to(dtype), (3, 3), 1.0, 2, 'avg', True)
    full = roi_align(features.to(dtype).float(), rois.to(dtype).float(), (3, 3), 1.0, 2, 'avg', True)
    assert half.dtype == dtype
    assert torch.equal(half, full.to(dtype))


def roi_pool_reference(features, rois, pooled_h, pooled_w, scale):
    """mmcv's roi_pool_forward_cuda_kernel, one output element at a time, in float64."""
    n_rois, channels = rois.shape[0], features.shape[1]
    height, width = features.shape[2:]
    output = np.zeros((n_rois, channels, pooled_h, pooled_w))
    argmax = np.zeros((n_rois, channels, pooled_h, pooled_w), dtype=np.int64)
    f, r = features.double().numpy(), rois.double().numpy()
    for n in range(n_rois):
        b = int(r[n, 0])
        x1, y1 = r[n, 1] * scale, r[n, 2] * scale
        x2, y2 = (r[n, 3] + 1) * scale, (r[n, 4] + 1) * scale
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            continue
        bw, bh = (x2 - x1) / pooled_w, (y2 - y1) / pooled_h
        for c in range(channels):
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    xs = min(max(int(np.floor(pw * bw + x1)), 0), width)
                    ys = min(max(int(np.floor(ph * bh + y1)), 0), height)
                    xe = min(max(int(np.ceil((pw + 1) * bw + x1)), 0), width)
                    ye = min(max(int(np.ceil((ph + 1) * bh + y1)), 0), height)
                    empty = ye <= ys or xe <= xs
                    best, idx = (0.0 if empty else -np.finfo(np.float32).max), -1
                    for h in range(ys, ye):
                        for w in range(xs, xe):
                            if f[b, c, h, w] > best:
                                best, idx = f[b, c, h, w], h * width + w
                    output[n, c, ph, pw], argmax[n, c, ph, pw] = best, idx
    return torch.from_numpy(output), torch.from_numpy(argmax)


def test_roi_pool_equals_mmcv_cuda_kernel_port(shim_in_mmcv):
    from mmcv.ops import roi_pool
    rng = np.random.default_rng(5)
    # Quantised values: ties inside windows, which the kernel resolves to the first in row-major order.
    features = torch.from_numpy(rng.integers(-3, 3, (2, 3, 11, 14)).astype(np.float64))
    rois = torch.tensor([[0, 1.0, 2.0, 20.0, 17.0], [1, 0.0, 0.0, 27.0, 21.0], [1, 9.3, 4.1, 12.2, 30.0],
                         [0, -6.0, -4.0, 3.0, 2.0], [0, 30.0, 30.0, 40.0, 40.0], [1, 5.0, 5.0, 3.0, 9.0]],
                        dtype=torch.float64)
    features.requires_grad_(True)
    output = roi_pool(features, rois, (3, 4), 0.5)
    expected, argmax = roi_pool_reference(features.detach(), rois, 3, 4, 0.5)
    assert torch.equal(output.detach(), expected)
    grad_out = torch.from_numpy(rng.standard_normal(output.shape))
    output.backward(grad_out)
    expected_grad = torch.zeros(2 * 3, 11 * 14, dtype=torch.float64)
    for n, c, ph, pw in np.ndindex(*argmax.shape):
        # A skipped (malformed) roi keeps the zeros its caller allocated: argmax 0, as in mmcv.
        if argmax[n, c, ph, pw] >= 0:
            expected_grad[int(rois[n, 0]) * 3 + c, argmax[n, c, ph, pw]] += grad_out[n, c, ph, pw]
    torch.testing.assert_close(features.grad.view(6, -1), expected_grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize('device', DEVICES)
def test_sigmoid_focal_loss_equals_mmdet_python_form(shim_in_mmcv, device):
    from mmcv.ops import sigmoid_focal_loss
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    logits = torch.randn(40, 6, dtype=torch.float64, device=device) * 4
    labels = torch.randint(0, 7, (40, ), device=device)  # 6 is background, as mmdet encodes it
    ours_in = logits.clone().requires_grad_(True)
    ours = sigmoid_focal_loss(ours_in, labels, 2.0, 0.25, None, 'sum')
    ref_in = logits.clone().requires_grad_(True)
    one_hot = torch.nn.functional.one_hot(labels, 7)[:, :6].to(logits)
    reference = py_sigmoid_focal_loss(ref_in, one_hot, gamma=2.0, alpha=0.25, reduction='sum')
    torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-12)
    ours.backward()
    reference.backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-9, atol=1e-12)


def test_nms_cuda_mode_is_validated(monkeypatch):
    monkeypatch.setenv(nms_module.CUDA_MODE_ENV, 'fastest')
    with pytest.raises(ValueError, match="MMKD_NMS_CUDA='fastest'.*'fast', 'exact'"):
        nms_module.cuda_mode()


def test_other_ops_raise_naming_the_op():
    with pytest.raises(CompiledOpsRequired, match=r"'deform_conv_forward'.*MMCV_OPS=compiled"):
        SHIM.deform_conv_forward(torch.zeros(1))
    with pytest.raises(CompiledOpsRequired, match="roi_align with pool_mode='max'"):
        run_roi_align_max()
    # Dunder look-ups fail as on any module, so inspect and mmengine's registry work.
    with pytest.raises(AttributeError):
        SHIM.__file__  # noqa: B018
    assert inspect.getmodule(TorchvisionExt) is sys.modules['mmkd.ops.ext']


def run_roi_align_max():
    features, rois = torch.zeros(1, 1, 4, 4), torch.tensor([[0., 0., 0., 2., 2.]])
    out = torch.zeros(1, 1, 2, 2)
    SHIM.roi_align_forward(features, rois, out, out, out, aligned_height=2, aligned_width=2,
                           spatial_scale=1.0, sampling_ratio=0, pool_mode=0, aligned=True)


def run_python(code, **env):
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=dict(os.environ, **env))
    return proc.returncode, proc.stdout + proc.stderr


def test_backend_switch_in_a_fresh_interpreter():
    code = 'import mmkd, mmcv.ops; from mmkd.ops import mmcv_ops_backend; print(mmcv_ops_backend())'
    rc, out = run_python(code, MMKD_MMCV_OPS='torchvision')
    assert rc == 0 and out.split()[-1] == 'torchvision', out
    rc, out = run_python(code, MMKD_MMCV_OPS='compiled')
    if mmcv_ops_backend() == 'compiled':
        assert rc == 0 and out.split()[-1] == 'compiled', out
    else:
        assert rc != 0 and 'MMKD_MMCV_OPS=compiled' in out and 'make setup MMCV_OPS=compiled' in out
    rc, out = run_python('import mmkd', MMKD_MMCV_OPS='cuda')
    assert rc != 0 and "MMKD_MMCV_OPS='cuda'" in out
    # mmdet before mmkd: the start-up hook provides the ops; without it, mmcv.ops fails or mmkd says why.
    rc, out = run_python(code.replace('import mmkd, mmcv.ops', 'import mmdet.models, mmkd'), MMKD_MMCV_OPS='torchvision')
    assert rc == 0 and out.split()[-1] == 'torchvision', out
    rc, out = run_python('import mmdet.models, mmkd', MMKD_MMCV_OPS='torchvision', MMKD_STARTUP_HOOK='0')
    assert rc != 0 and ('MMKD_STARTUP_HOOK=0' in out or "No module named 'mmcv._ext'" in out), out


# A float32 Faster R-CNN step is exact up to the order of its sums, which the CPU's kernel path
# (ATen's vector kernels, oneDNN's ISA, the thread count) picks. Measured on 2026-12-05 (AMD EPYC,
# AVX2) under 7 paths (default, ATEN_CPU_CAPABILITY=default|avx2, ONEDNN_MAX_CPU_ISA=AVX2|SSE41,
# OMP_NUM_THREADS=1, and all three at once) against the golden recorded on an Intel AVX-512 machine:
# losses differ by <= 1.3e-5 relative, a parameter's gradient sum of squares by <= 2.3e-3 (the small
# gradients of zero-initialised BN scales deep in the backbone). A real fault is larger: RoIAlign
# shifted by half a pixel (`aligned` flipped) moves the losses by 1.0e-4 and gradients by 3.5e-2.
# The bounds sit between the two, about 4x above the summation noise and 2-3x below that fault:
# losses within LOSS_RTOL, gradients within GRAD_RTOL per element, so a sum of squares within
# 2 * GRAD_RTOL and a sum within GRAD_RTOL * sqrt(numel * sum of squares) (Cauchy-Schwarz).
LOSS_RTOL = 5e-5
GRAD_RTOL = 5e-3


def faster_rcnn_step_violations(golden):
    """Every loss and gradient statistic of :func:`faster_rcnn_step` outside its float32 bound."""
    losses, grads = faster_rcnn_step()
    expected = golden['faster_rcnn']
    assert losses.keys() == expected['losses'].keys() and grads.keys() == expected['grads'].keys()
    bad = [f'{name}: {losses[name]!r} vs {value!r}' for name, value in expected['losses'].items()
           if losses[name] != pytest.approx(value, rel=LOSS_RTOL, abs=1e-7)]
    numel = {name: p.numel() for name, p in faster_rcnn_model().named_parameters()}
    for name, value in expected['grads'].items():
        (grad_sum, grad_sumsq), (ours_sum, ours_sumsq) = value.tolist(), grads[name].tolist()
        if ours_sumsq != pytest.approx(grad_sumsq, rel=2 * GRAD_RTOL, abs=1e-12):
            bad.append(f'grad sum of squares of {name}: {ours_sumsq!r} vs {grad_sumsq!r}')
        # A gradient's sum can cancel to ~0 (a classifier's rows sum to zero): bound it by its terms'.
        if abs(ours_sum - grad_sum) > GRAD_RTOL * (numel[name] * grad_sumsq) ** 0.5 + 1e-9:
            bad.append(f'grad sum of {name}: {ours_sum!r} vs {grad_sum!r}')
    return bad


@pytest.mark.slow
def test_faster_rcnn_step_equals_golden(golden, shim_in_mmcv):
    """One train step over mmkd's ops equals the compiled kernels' golden step within the float32
    summation-order bounds above, on any kernel path (the golden keeps the path it was recorded on)."""
    from mmkd.ops.equivalence import kernel_path
    bad = faster_rcnn_step_violations(golden)
    assert not bad, (f'here: {kernel_path()}; golden: {golden["versions"]}\n' + '\n'.join(bad))


@pytest.mark.slow
def test_faster_rcnn_step_bounds_catch_a_half_pixel_roi_align(golden, shim_in_mmcv, monkeypatch):
    """The bounds are not so loose that a subtle op fault passes: RoIAlign sampling half a pixel off."""
    forward, backward = SHIM.roi_align_forward, SHIM.roi_align_backward

    def flipped(op):
        return lambda *args, **kwargs: op(*args, **{**kwargs, 'aligned': not kwargs['aligned']})

    monkeypatch.setattr(SHIM, 'roi_align_forward', flipped(forward))
    monkeypatch.setattr(SHIM, 'roi_align_backward', flipped(backward))
    bad = faster_rcnn_step_violations(golden)
    assert any(line.startswith('loss') for line in bad) and any(line.startswith('grad') for line in bad), bad


@pytest.mark.slow
def test_faster_rcnn_step_equals_live_compiled(monkeypatch):
    compiled_ext()
    compiled_losses, compiled_grads = faster_rcnn_step()
    for module in ('nms', 'roi_align'):
        monkeypatch.setattr(sys.modules[f'mmcv.ops.{module}'], 'ext_module', SHIM)
    losses, grads = faster_rcnn_step()
    assert losses == compiled_losses
    assert all(torch.equal(grads[name], compiled_grads[name]) for name in compiled_grads)
