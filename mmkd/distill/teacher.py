"""Building the frozen teacher: from a config file or a model dict, plus a local checkpoint."""
import os.path as osp
import re
from collections import Counter
from typing import Dict, List, Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from mmkd.registry import MODELS


#: With ``strict=False``, a checkpoint that fills less than this share of the teacher's tensors is
#: refused all the same: it belongs to another architecture or carries another key prefix.
MIN_LOADED_SHARE = 0.5


class TeacherCheckpointError(RuntimeError):
    """The teacher checkpoint does not fit the teacher (a random teacher would be distilled)."""


def build_teacher(cfg: dict) -> nn.Module:
    """``dict(config='teacher.py' | model=dict(...), checkpoint='teacher.pth', strict=True)``.

    The checkpoint is loaded on the CPU and must fill the teacher exactly: any missing, unexpected or
    shape-mismatched tensor is an error naming them. ``strict=False`` loads what fits and logs the
    rest, but still refuses a checkpoint that fills less than half the teacher's tensors. The
    teacher is returned frozen and in eval mode.
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
        load_teacher_weights(teacher, checkpoint, strict=cfg.get('strict', True))
    else:
        print_log('teacher has no checkpoint: it distils from random weights.', logger='current',
                  level=30)
    return freeze(teacher)


def load_teacher_weights(teacher: nn.Module, path: str, strict: bool = True) -> float:
    """Load ``path`` into ``teacher``; returns the share of the teacher's tensors it filled."""
    checkpoint = _load_checkpoint(path, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, dict):
        raise TeacherCheckpointError(f"teacher checkpoint '{path}' holds a {type(state).__name__}, "
                                     'not a state dict.')
    state = {re.sub(r'^module\.', '', key): value for key, value in state.items()}  # saved from DDP
    own = teacher.state_dict()
    # Checkpoints from before BatchNorm counted its batches lack this buffer; torch fills it in.
    needed = [k for k in own if not k.endswith('num_batches_tracked')]
    fits = [k for k in own if k in state and tuple(state[k].shape) == tuple(own[k].shape)]
    missing = [k for k in needed if k not in state]
    mismatched = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in own
                  if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    unexpected = [k for k in state if k not in own]
    share = len([k for k in fits if k in needed]) / max(len(needed), 1)
    report = (f"teacher checkpoint '{path}' filled {share:.1%} of the teacher's tensors "
              f'({len(needed) - len(missing) - len(mismatched)}/{len(needed)})' +
              _listing('missing', missing) + _listing('unexpected', unexpected) +
              _listing('shape-mismatched', mismatched))
    if share < MIN_LOADED_SHARE or (strict and (missing or unexpected or mismatched)):
        raise TeacherCheckpointError(
            report + _prefix_hint(list(state), list(own)) + '. The student would distil from a '
            "(partly) random teacher: give the teacher's own checkpoint and config" +
            ('' if share < MIN_LOADED_SHARE else ', or strict=False to accept a partial fit') + '.')
    teacher.load_state_dict({k: state[k] for k in fits}, strict=False)
    print_log(report, logger='current', level=30 if (missing or unexpected or mismatched) else 20)
    return share


def _listing(what: str, keys: List[str], shown: int = 3) -> str:
    if not keys:
        return ''
    more = f' and {len(keys) - shown} more' if len(keys) > shown else ''
    return f'; {len(keys)} {what}: {", ".join(keys[:shown])}{more}'


def _prefix_hint(checkpoint_keys: List[str], own_keys: List[str]) -> str:
    """Names a key prefix that, removed from or added to the checkpoint's keys, would make them fit."""
    own = set(own_keys)
    candidates: Dict[str, int] = {}
    for prefix, _ in Counter(k.split('.')[0] + '.' for k in checkpoint_keys).most_common(3):
        candidates[f"remove the prefix '{prefix}'"] = sum(
            k[len(prefix):] in own for k in checkpoint_keys if k.startswith(prefix))
    for prefix, _ in Counter(k.split('.')[0] + '.' for k in own_keys).most_common(3):
        candidates[f"add the prefix '{prefix}'"] = sum(prefix + k in own for k in checkpoint_keys)
    fix, count = max(candidates.items(), key=lambda item: item[1], default=('', 0))
    direct = sum(k in own for k in checkpoint_keys)
    if count > max(direct, len(own) // 2):
        return f"; its keys would fit if you {fix} ({count} tensors)"
    return ''


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
