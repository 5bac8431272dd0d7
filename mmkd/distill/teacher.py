"""Building the frozen teacher: from a config file or a model dict, plus a local checkpoint."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import load_checkpoint
from torch import nn

from mmkd.registry import MODELS


def build_teacher(cfg: dict) -> nn.Module:
    """``dict(config='teacher.py' | model=dict(...), checkpoint='teacher.pth', strict=False)``.

    The checkpoint is loaded on the CPU; missing and unexpected keys are logged, and ``strict=True``
    turns them into an error. The teacher is returned frozen and in eval mode.
    """
    cfg = dict(cfg)
    unknown = set(cfg) - {'config', 'model', 'checkpoint', 'strict'}
    if unknown or ('config' in cfg) == ('model' in cfg):
        raise ValueError(
            f'teacher={cfg!r}: give exactly one of config=<path to a config file> or model=<model dict>, '
            f'plus checkpoint=<local .pth> (and optionally strict); unknown keys {sorted(unknown)}.')
    model_cfg = cfg.get('model')
    if 'config' in cfg:
        if not osp.isfile(cfg['config']):
            raise FileNotFoundError(f"teacher config '{cfg['config']}' does not exist.")
        model_cfg = Config.fromfile(cfg['config']).model
    model_cfg = ConfigDict(model_cfg)
    _drop_pretrained_init(model_cfg)
    teacher = MODELS.build(model_cfg)
    checkpoint: Optional[str] = cfg.get('checkpoint')
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f"teacher checkpoint '{checkpoint}' does not exist; set teacher.checkpoint to a local "
                '.pth file (mmkd never downloads weights).')
        load_checkpoint(teacher, checkpoint, map_location='cpu', strict=cfg.get('strict', False),
                        logger=MMLogger.get_current_instance())
    else:
        print_log('teacher has no checkpoint: it distils from random weights.', logger='current',
                  level=30)
    return freeze(teacher)


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def _drop_pretrained_init(cfg: ConfigDict) -> None:
    """The teacher's weights come from its checkpoint: its init_cfg (which may point at a download,
    e.g. torchvision://resnet101) is never used."""
    cfg.pop('init_cfg', None)
    for value in cfg.values():
        if isinstance(value, dict):
            value.pop('init_cfg', None)


def check_preprocessing(student: nn.Module, teacher: nn.Module) -> None:
    """Warn when the teacher's data_preprocessor normalises differently from the student's: the
    teacher sees the student's preprocessed batch."""
    differences = []
    for name in ('mean', 'std'):
        s = getattr(getattr(student, 'data_preprocessor', None), name, None)
        t = getattr(getattr(teacher, 'data_preprocessor', None), name, None)
        if isinstance(s, torch.Tensor) and isinstance(t, torch.Tensor) and (
                s.shape != t.shape or not torch.allclose(s.float().cpu(), t.float().cpu())):
            differences.append(f'{name}: student {s.flatten().tolist()} vs teacher {t.flatten().tolist()}')
    s = getattr(getattr(student, 'data_preprocessor', None), '_channel_conversion', None)
    t = getattr(getattr(teacher, 'data_preprocessor', None), '_channel_conversion', None)
    if s is not None and t is not None and s != t:
        differences.append(f'bgr_to_rgb/rgb_to_bgr: student {s} vs teacher {t}')
    if differences:
        print_log('teacher data_preprocessor normalises differently from the student\'s, but the teacher '
                  'sees the student\'s preprocessed batch: ' + '; '.join(differences) +
                  '. Train the teacher with the same normalisation or expect degraded targets.',
                  logger='current', level=30)
