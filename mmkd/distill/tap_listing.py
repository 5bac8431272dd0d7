"""Every tappable tensor of a model, found by running it once (``tools/list_taps.py``).

A tap names a module's output (or, for a ReLU, its input: the pre-activation that FitNet, AB and
NST's release use), the call of a module that runs several times, and the element of a tuple
output (``mmkd.distill.taps``). The listing runs one dummy batch at the config's input size through
the model with a forward hook on every module, so it shows exactly what a term would receive.
"""
import copy
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict
from torch import Tensor, nn

from mmkd.registry import MODELS
from .engine import as_taps
from .taps import Tap
from .teacher import _drop_pretrained_init


@dataclass(frozen=True)
class TapInfo:
    tap: Tap
    shape: Tuple[int, ...]

    @property
    def spatial(self) -> Optional[Tuple[int, int]]:
        return tuple(self.shape[-2:]) if len(self.shape) == 4 else None

    def spec(self) -> str:
        """The tap as a config writes it."""
        tap = self.tap
        if tap.io == 'output' and tap.call == 0 and tap.index is None:
            return repr(tap.module)
        parts = [f'module={tap.module!r}'] + (["io='input'"] if tap.io == 'input' else []) + \
                ([f'call={tap.call}'] if tap.call else []) + ([f'index={tap.index}'] if tap.index is not None else [])
        return f'dict({", ".join(parts)})'


def record_taps(model: nn.Module, run) -> List[TapInfo]:
    """Run ``run()`` (one forward of ``model``) with hooks on every module; the tensors each module
    gives (every call; tuple elements by index) and every ReLU's input, in execution order."""
    found: List[TapInfo] = []
    calls: Dict[str, int] = {}
    handles = []

    def outputs(value) -> List[Tuple[Optional[int], Tensor]]:
        if isinstance(value, Tensor):
            return [(None, value)]
        if isinstance(value, (tuple, list)) and value and all(isinstance(v, Tensor) for v in value):
            return list(enumerate(value))
        return []

    def pre_hook(name):
        def hook(module, args):
            call = calls.get(name, 0)
            calls[name] = call + 1
            if isinstance(module, nn.ReLU) and args and isinstance(args[0], Tensor):
                found.append(TapInfo(Tap(name, 'input', call), tuple(args[0].shape)))
        return hook

    def post_hook(name):
        def hook(module, args, output):
            for index, tensor in outputs(output):
                found.append(TapInfo(Tap(name, 'output', calls[name] - 1, index), tuple(tensor.shape)))
        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(pre_hook(name)))
            handles.append(module.register_forward_hook(post_hook(name)))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return found


def build_for_listing(model_cfg: dict) -> nn.Module:
    """The model with random weights (no checkpoint or pretrained download is needed for shapes)."""
    cfg = ConfigDict(copy.deepcopy(model_cfg))
    _drop_pretrained_init(cfg)
    return MODELS.build(cfg).eval()


def run_dummy_batch(model: nn.Module, size: Tuple[int, int]):
    """One forward of a 1 x 3 x H x W batch as the runner would call it in 'tensor' mode; a
    detector gets the image metadata its heads need."""
    inputs = torch.randn(1, 3, *size)
    if hasattr(model, 'rpn_head') or hasattr(model, 'bbox_head') or hasattr(model, 'roi_head'):
        from mmdet.structures import DetDataSample
        meta = dict(img_shape=size, ori_shape=size, pad_shape=size, batch_input_shape=size, scale_factor=(1.0, 1.0))
        return lambda: model(inputs, [DetDataSample(metainfo=meta)], mode='tensor')
    return lambda: model(inputs, mode='tensor')


def pipeline_input_size(cfg: Config) -> Optional[Tuple[int, int]]:
    """(H, W) the training pipeline produces: its last transform that sets a size (Resize scale is
    (W, H) as in mmdet; RandomResizedCrop scale, CenterCrop crop_size, RandomCrop* size)."""
    pipeline = find_pipeline(cfg.get('train_dataloader'))
    size = None
    for transform in pipeline or []:
        for key in ('scale', 'crop_size', 'size'):
            value = transform.get(key) if isinstance(transform, dict) else None
            if isinstance(value, int):
                size = (value, value)
            elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
                size = (value[1], value[0]) if key == 'scale' else tuple(value)
    return size


def find_pipeline(node) -> Optional[Sequence[dict]]:
    if isinstance(node, dict):
        if isinstance(node.get('pipeline'), (list, tuple)):
            return node['pipeline']
        for value in node.values():
            found = find_pipeline(value)
            if found is not None:
                return found
    elif isinstance(node, (list, tuple)):
        for value in node:
            found = find_pipeline(value)
            if found is not None:
                return found
    return None


def distillation_parts(cfg: Config) -> Tuple[dict, Optional[dict], List[dict]]:
    """(student model cfg, teacher model cfg or None, terms) of a Distiller or hook config, or of
    a plain model config (no teacher, no terms)."""
    model = cfg.model
    if str(model.get('type', '')).split('.')[-1] == 'Distiller':
        return model.student, teacher_model_cfg(model.teacher), list(model.distill)
    for hook in cfg.get('custom_hooks') or []:
        if str(hook.get('type', '')).split('.')[-1] == 'DistillationHook':
            return model, teacher_model_cfg(hook['teacher']), list(hook['distill'])
    return model, None, []


def teacher_model_cfg(teacher: dict) -> dict:
    return Config.fromfile(teacher['config']).model if 'config' in teacher else teacher['model']


def used_taps(terms: List[dict]) -> Tuple[set, set]:
    return ({t for term in terms for t in as_taps(term.get('student'))},
            {t for term in terms for t in as_taps(term.get('teacher'))})


def pairing(spatial: Optional[Tuple[int, int]], other_sizes: set) -> str:
    """'~' the other model has a tap of this H x W; '.' one within a pixel each way (strided layers
    that round differently: the spatial losses resize the student); ' ' neither."""
    if spatial is None:
        return ' '
    if spatial in other_sizes:
        return '~'
    near = any(abs(spatial[0] - h) <= 1 and abs(spatial[1] - w) <= 1 for h, w in other_sizes)
    return '.' if near else ' '


def format_listing(role: str, taps: List[TapInfo], used: set, other_sizes: set, size: Tuple[int, int]) -> List[str]:
    lines = [f'{role}: {len(taps)} taps at input 1 x 3 x {size[0]} x {size[1]}  (* used by this config; '
             '~ the other model has a tap of this H x W, . one within a pixel)']
    width = max((len(t.spec()) for t in taps), default=10)
    for info in taps:
        mark = ('*' if info.tap in used else ' ') + pairing(info.spatial, other_sizes)
        note = '  pre-ReLU' if info.tap.io == 'input' else ''
        lines.append(f'{mark} {info.spec():<{width}}  {tuple(info.shape)}{note}')
    return lines


def list_taps(cfg: Config, with_teacher: bool = True, size: Optional[Tuple[int, int]] = None) -> Tuple[str, dict]:
    """The listing text of the student (and teacher), and dict(student=[TapInfo], teacher=[...],
    missing=[taps the config uses that the model does not give])."""
    size = size or pipeline_input_size(cfg)
    if size is None:
        raise ValueError('the config\'s training pipeline sets no input size (Resize scale, RandomResizedCrop '
                         'scale, CenterCrop crop_size): give one with --shape H W.')
    student_cfg, teacher_cfg, terms = distillation_parts(cfg)
    student = build_for_listing(student_cfg)
    found = dict(student=record_taps(student, run_dummy_batch(student, size)), teacher=[])
    if with_teacher and teacher_cfg is not None:
        teacher = build_for_listing(teacher_cfg)
        found['teacher'] = record_taps(teacher, run_dummy_batch(teacher, size))
    used_student, used_teacher = used_taps(terms)
    sizes = {role: {t.spatial for t in taps if t.spatial} for role, taps in found.items()}
    lines = format_listing('student', found['student'], used_student, sizes['teacher'], size)
    if found['teacher']:
        lines += [''] + format_listing('teacher', found['teacher'], used_teacher, sizes['student'], size)
    given = {role: {t.tap for t in taps} for role, taps in found.items()}
    missing = [f'student {t}' for t in used_student if t not in given['student']]
    if found['teacher']:
        missing += [f'teacher {t}' for t in used_teacher if t not in given['teacher']]
    if terms:
        lines += ['', f'this config taps {len(used_student)} student and {len(used_teacher)} teacher tensor(s)' +
                  (f'; NOT FOUND: {", ".join(missing)}' if missing else ', all found above (*).')]
    return '\n'.join(lines), dict(found, missing=missing)
