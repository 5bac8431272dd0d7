"""The evidence that mmkd.ops equals mmcv's compiled kernels: cases, golden outputs, comparison.

``tools/check_mmcv_ops.py --record`` (with mmcv's compiled ops installed) runs the compiled kernels on
:func:`nms_cases` and :func:`roi_align_cases` and on one Faster R-CNN R-50-FPN train step
(:func:`faster_rcnn_step`), and stores inputs and outputs in ``tests/fixtures/mmcv_ops_golden.pt``.
Inputs come from numpy's seeded generator and are stored with the outputs, so the file does not depend
on torch's RNG. tests/test_ops.py and ``tools/check_mmcv_ops.py [--device cuda]`` compare the
torchvision-backed ops with it, so installs without compiled ops (CI, GPU machines) are checked too.
"""
import os
import os.path as osp
import platform

import numpy as np
import torch

#: The environment variables that pick a CPU kernel path (and so a float32 summation order).
KERNEL_PATH_ENV = ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA', 'MKL_CBWR', 'OMP_NUM_THREADS')


def _processor_name() -> str:
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kernel_path() -> dict:
    """What fixes the float32 summation order of a CPU run: processor, ATen's vector kernels, the
    thread count and the variables that override them. A golden value is only bit-exact on the path
    it was recorded with; elsewhere it is compared within a bound (tests/test_ops.py)."""
    return dict(processor=_processor_name(),
                aten_cpu_capability=torch.backends.cpu.get_cpu_capability(),
                threads=torch.get_num_threads(),
                env={name: os.environ[name] for name in KERNEL_PATH_ENV if name in os.environ})


def _boxes(rng, n, integer):
    xy = rng.uniform(0, 60, (n, 2))
    wh = rng.uniform(-2, 30, (n, 2))   # some degenerate boxes (x2 < x1)
    boxes = np.concatenate([xy, xy + wh], 1)
    return torch.from_numpy(np.round(boxes) if integer else boxes).float()


def nms_cases():
    """(boxes, scores, iou_threshold, offset) covering ties, exact-threshold IoUs, empty input."""
    rng = np.random.default_rng(12)
    cases = []
    for n in (0, 1, 7, 60, 400):
        for integer in (False, True):  # integer corners give IoUs that sit exactly on 0.5 and 0.7
            boxes = _boxes(rng, n, integer)
            for levels in (None, 5):     # 5 score levels: many equal scores
                raw = rng.uniform(0, 1, n)
                scores = torch.from_numpy(np.floor(raw * levels) / levels if levels else raw).float()
                for threshold in (0.3, 0.5, 0.7):
                    for offset in (0, 1):
                        cases.append((boxes, scores, threshold, offset))
    same = torch.tensor([[0., 0., 10., 10.]] * 6)
    cases.append((same, torch.full((6, ), 0.5), 0.5, 0))            # identical boxes, equal scores
    return cases


def roi_align_cases():
    """(features, rois, grad_output, output_size, spatial_scale, sampling_ratio, aligned)."""
    rng = np.random.default_rng(7)
    features = torch.from_numpy(rng.standard_normal((2, 3, 13, 17))).float()
    corners = rng.uniform(-8, 40, (24, 2))
    sizes = rng.uniform(0, 25, (24, 2))
    rois = np.concatenate([rng.integers(0, 2, (24, 1)), corners, corners + sizes], 1)
    rois[0, 3:] = rois[0, 1:3]                                           # a zero-size roi
    rois[1, 1:] = [80, 80, 95, 90]                                       # wholly outside the image
    rois = torch.from_numpy(rois).float()
    cases = []
    for output_size in ((7, 7), (3, 5)):
        for scale in (0.5, 0.25):
            for sampling_ratio in (0, 2):
                for aligned in (True, False):
                    grad = torch.from_numpy(rng.standard_normal((24, 3, *output_size))).float()
                    cases.append((features, rois, grad, output_size, scale, sampling_ratio, aligned))
    cases.append((features, rois[:0], torch.zeros(0, 3, 7, 7), (7, 7), 0.5, 0, True))  # no rois
    return cases


def run_nms(ext, case):
    boxes, scores, threshold, offset = case
    return ext.nms(boxes, scores, iou_threshold=threshold, offset=offset)


def nms_reference(case, device: str, kernel: str) -> torch.Tensor:
    """mmcv's ``kernel`` ('cpu' or 'cuda') written out in numpy float32, one kept box at a time: the
    boxes in the order of ``scores.sort(0, descending=True)`` on ``device`` (the kernels sort there),
    then each kept box removes the later boxes it overlaps (CPU: inter / union > t; CUDA:
    inter > t * union). Independent of :mod:`mmkd.ops.nms`; equals the compiled CPU kernel on the
    golden cases (tests/test_ops.py), the evidence that the port is faithful."""
    boxes, scores, threshold, offset = case
    order = scores.to(device).sort(0, descending=True)[1].cpu().numpy()
    b = boxes.numpy().astype(np.float32)[order]
    t = np.float32(threshold)
    off = np.float32(offset)
    area = (b[:, 2] - b[:, 0] + off) * (b[:, 3] - b[:, 1] + off)
    alive = np.ones(len(b), dtype=bool)
    for i in range(len(b)):
        if not alive[i]:
            continue
        later = slice(i + 1, None)
        w = np.maximum(np.minimum(b[i, 2], b[later, 2]) - np.maximum(b[i, 0], b[later, 0]) + off,
                       np.float32(0))
        h = np.maximum(np.minimum(b[i, 3], b[later, 3]) - np.maximum(b[i, 1], b[later, 1]) + off,
                       np.float32(0))
        inter = w * h
        union = area[i] + area[later] - inter
        with np.errstate(divide='ignore', invalid='ignore'):
            over = inter / union > t if kernel == 'cpu' else inter > t * union
        alive[later] &= ~over
    return torch.from_numpy(order[alive].astype(np.int64))


def run_roi_align(ext, case):
    features, rois, grad, (height, width), scale, sampling_ratio, aligned = case
    output = features.new_zeros(rois.shape[0], features.shape[1], height, width)
    empty = features.new_zeros(0)
    common = dict(aligned_height=height, aligned_width=width, spatial_scale=scale,
                  sampling_ratio=sampling_ratio, pool_mode=1, aligned=aligned)
    ext.roi_align_forward(features, rois, output, empty, empty, **common)
    grad_input = torch.zeros_like(features)
    ext.roi_align_backward(grad.contiguous(), rois, empty, empty, grad_input, **common)
    return output, grad_input


def faster_rcnn_model():
    """mmdet's Faster R-CNN R-50-FPN (COCO config), weights drawn from torch's RNG seeded with 0."""
    import mmdet
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmkd.registry import MODELS

    init_default_scope('mmkd')
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'faster_rcnn',
                                   'faster-rcnn_r50_fpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def faster_rcnn_step():
    """One train step of :func:`faster_rcnn_model` (2 images): losses and, per parameter,
    the sum and the sum of squares of its gradient, in float64."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    model = faster_rcnn_model()
    model.train()
    rng = np.random.default_rng(3)
    samples, images = [], []
    for boxes, labels in [([[10., 12., 90., 100.], [60., 5., 150., 60.]], [1, 7]),
                          ([[5., 5., 70., 120.]], [3])]:
        sample = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160),
                                             pad_shape=(128, 160), scale_factor=(1.0, 1.0),
                                             batch_input_shape=(128, 160)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor(labels))
        samples.append(sample)
        images.append(torch.from_numpy(rng.integers(0, 255, (3, 128, 160), dtype=np.uint8)))
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)
    torch.manual_seed(1)   # the samplers of RPN and RoI head draw from torch's RNG
    losses = model(**data, mode='loss')
    total, log_vars = model.parse_losses(losses)
    total.backward()
    grads = {name: torch.stack([p.grad.double().sum(), p.grad.double().pow(2).sum()])
             for name, p in model.named_parameters() if p.grad is not None}
    return {k: float(torch.as_tensor(v).detach()) for k, v in log_vars.items()}, grads


def record(ext, path: str) -> dict:
    """Runs ``ext`` (mmcv's compiled ``mmcv._ext``) on every case and saves inputs and outputs."""
    import mmcv
    golden = dict(
        nms=[(case, run_nms(ext, case)) for case in nms_cases()],
        roi_align=[(case, run_roi_align(ext, case)) for case in roi_align_cases()],
        faster_rcnn=dict(zip(('losses', 'grads'), faster_rcnn_step())),
        versions=dict(torch=str(torch.__version__), mmcv=str(mmcv.__version__)), kernel_path=kernel_path())
    torch.save(golden, path)
    return golden


def load_golden(path: str) -> dict:
    return torch.load(path, weights_only=True)


def _to(device, case):
    return tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in case)


def compare_to_golden(ext, golden: dict, device: str = 'cpu') -> dict:
    """Runs ``ext`` on the golden cases' inputs on ``device``: per op, the number of cases, of NMS
    keep lists that differ, and the largest absolute difference of RoIAlign outputs and gradients.

    The golden outputs come from mmcv's CPU kernels. On a CUDA device mmcv sorts equal scores in the
    device's order and its CUDA kernel tests overlaps in another form (mmkd/ops/nms.py), so there the
    keep lists are compared with :func:`nms_reference` sorted on the device, with the CUDA kernel's
    test under ``MMKD_NMS_CUDA=exact`` and the CPU kernel's under ``fast`` (offset 1 always follows the
    CUDA kernel); ``nms_cuda_differs_from_cpu`` counts the cases where mmcv's two kernels disagree."""
    from .nms import cuda_mode
    cuda = torch.device(device).type == 'cuda'
    nms_mismatches = cuda_differs = 0
    for case, keep in golden['nms']:
        test = 'cuda' if cuda_mode() == 'exact' or case[3] == 1 else 'cpu'
        expected = nms_reference(case, device, test) if cuda else keep
        nms_mismatches += not torch.equal(run_nms(ext, _to(device, case)).cpu(), expected)
        cuda_differs += cuda and not torch.equal(nms_reference(case, device, 'cuda'), keep)
    worst = dict(output=0.0, grad=0.0)
    for case, expected in golden['roi_align']:
        for key, ours, theirs in zip(worst, run_roi_align(ext, _to(device, case)), expected):
            if theirs.numel():
                worst[key] = max(worst[key], float((ours.cpu() - theirs).abs().max()))
    extra = dict(nms_cuda_differs_from_cpu=cuda_differs) if cuda else {}
    return dict(nms_cases=len(golden['nms']), nms_mismatches=nms_mismatches, **extra,
                roi_align_cases=len(golden['roi_align']), roi_align_max_abs_diff=worst['output'],
                roi_align_grad_max_abs_diff=worst['grad'])
