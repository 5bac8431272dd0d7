"""The installed OpenMMLab stack: compiled mmcv ops, an mmdet detector, registries, train/resume."""
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import mmdet
import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.logging import HistoryBuffer

from mmkd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(REPO, 'tests', 'fixtures')
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')


def run_tool(*args, cwd):
    env = dict(os.environ, PYTHONPATH=FIXTURES)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_mmcv_compiled_nms_on_cpu():
    from mmcv.ops import nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]],
                         dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    # Box 3 (0.95) suppresses 0 (IoU 0.9) and 1 (IoU 0.65 with 3); box 2 is disjoint.
    assert keep.tolist() == [3, 2]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.95, 0.7]))


@pytest.mark.numerics
def test_mmcv_compiled_roi_align_matches_torchvision():
    from mmcv.ops import RoIAlign
    feats = torch.randn(2, 3, 16, 20)
    rois = torch.tensor([[0, 1.5, 2.0, 10.0, 12.5], [1, 0.0, 0.0, 19.0, 15.0], [1, 4.2, 3.3, 8.8, 7.1]])
    ours = RoIAlign((5, 4), spatial_scale=0.5, sampling_ratio=2, aligned=True)(feats, rois)
    reference = torchvision.ops.roi_align(feats, rois, (5, 4), spatial_scale=0.5, sampling_ratio=2,
                                          aligned=True)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_mmdet_faster_rcnn_trains_and_infers_on_cpu():
    from mmdet.structures import DetDataSample
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    init_default_scope('mmkd')  # as the runner does from a config's default_scope
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, 'faster_rcnn', 'faster-rcnn_r50_fpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None  # no download of ImageNet weights
    model = MODELS.build(cfg.model)
    model.train()

    samples = []
    for boxes, labels in [([[10., 12., 60., 70.], [30., 5., 90., 40.]], [1, 7]), ([[5., 5., 50., 90.]], [3])]:
        sample = DetDataSample(metainfo=dict(img_shape=(96, 128), ori_shape=(96, 128), pad_shape=(96, 128),
                                             scale_factor=(1.0, 1.0), batch_input_shape=(96, 128)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor(labels))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8) for _ in samples],
             data_samples=samples), training=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = model(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    optimizer.step()

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=data['inputs'].byte().unbind(0), data_samples=samples))
        predictions = model(**data, mode='predict')
    assert len(predictions) == 2
    for prediction in predictions:
        assert prediction.pred_instances.bboxes.shape[1] == 4


def test_custom_imports_config_resolves_mmkd_type(tmp_path):
    config = tmp_path / 'plain_mmdet.py'
    config.write_text("custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)\n"
                      "default_scope = 'mmdet'\n"
                      "loss = dict(type='mmkd.NSTLoss', kernel='poly', loss_weight=50.0)\n")
    # A fresh interpreter that never imports mmkd itself: the config's custom_imports must do it.
    code = ('from mmengine.config import Config; from mmdet.registry import MODELS; '
            f'cfg = Config.fromfile({str(config)!r}); loss = MODELS.build(cfg.loss); '
            'print(type(loss).__module__, type(loss).__name__, loss.loss_weight)')
    out = run_tool('-c', code, cwd=str(tmp_path))
    assert 'mmkd.losses.nst NSTLoss 50.0' in out


def test_mmkd_registries_are_children_of_mmdet():
    from mmdet.registry import MODELS as MMDET_MODELS
    assert MODELS.scope == 'mmkd' and MODELS.parent is MMDET_MODELS
    # Built from the mmkd scope, an mmdet type resolves through the parent.
    assert type(MODELS.build(dict(type='SmoothL1Loss'))).__module__.startswith('mmdet.')


@pytest.mark.slow
def test_train_resume_with_weights_only_loading(tmp_path):
    work_dir = tmp_path / 'work'
    config = osp.join(FIXTURES, 'toy_config.py')
    run_tool(osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', str(work_dir), cwd=str(tmp_path))
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()

    # torch's own default (weights_only=True) reads it once mmkd allow-lists mmengine's types
    # (mmkd.allow_mmengine_checkpoints(), made by tests/conftest.py as by mmkd's tools).
    state = torch.load(checkpoint)
    assert isinstance(state['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert state['message_hub']['log_scalars']['train/loss'].min() >= 0

    out = run_tool(osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', str(work_dir), '--resume',
                   '--cfg-options', 'train_cfg.max_iters=4', cwd=str(tmp_path))
    assert 'resumed epoch: 0, iter: 2' in out, out[-2000:]
    assert (work_dir / 'iter_4.pth').is_file()
    assert torch.load(work_dir / 'iter_4.pth')['meta']['iter'] == 4

    out = run_tool(osp.join(REPO, 'tools', 'test.py'), config, str(work_dir / 'iter_4.pth'),
                   '--work-dir', str(work_dir), cwd=str(tmp_path))
    assert re.search(r'mse: \d', out), out[-2000:]


class ArbitraryObject:
    def __reduce__(self):
        return (print, ('this must never run',))


class AttributeEscape:
    """Pickles as getattr(HistoryBuffer, '__init__'): attribute access beyond the statistics."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.parametrize('payload', [ArbitraryObject(), AttributeEscape()], ids=['object', 'getattr'])
def test_checkpoint_with_other_objects_is_refused(tmp_path, payload):
    from mmengine.runner.checkpoint import _load_checkpoint

    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta=dict(payload=payload)), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')


def test_history_buffer_statistics_round_trip(tmp_path):
    buffer = HistoryBuffer()
    for value in (3.0, 1.0, 2.0):
        buffer.update(value)
    torch.save(dict(buffer=buffer), tmp_path / 'hb.pth')
    loaded = torch.load(tmp_path / 'hb.pth')['buffer']
    assert (loaded.min(), loaded.max(), loaded.mean(), loaded.current()) == (1.0, 3.0, 2.0, 2.0)



def test_checkpoint_allow_list_is_an_explicit_call():
    """Without the start-up hook (which allow-lists when mmengine's checkpoint module loads,
    tests/test_startup_hook.py), import mmkd leaves torch's weights_only allow-list alone;
    mmkd.allow_mmengine_checkpoints() (made by the tools and the front doors) adds mmengine's types."""
    code = ('import torch, mmkd\n'
            'from mmengine.logging import HistoryBuffer\n'
            'def allowed():\n'
            '    return any((g[0] if isinstance(g, tuple) else g) is HistoryBuffer\n'
            '               for g in torch.serialization.get_safe_globals())\n'
            'before = allowed()\n'
            'mmkd.allow_mmengine_checkpoints()\n'
            'print(before, allowed())\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, MMKD_STARTUP_HOOK='0')).stdout
    assert out.split()[-2:] == ['False', 'True']
