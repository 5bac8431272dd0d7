"""The distillation engine behind both front doors (``DistillationHook`` and ``Distiller``).

It owns the teacher, the feature taps on student and teacher, the connectors, the loss terms and
their schedules, and adds the active terms to the student's loss dict::

    engine.begin_student_forward(mode)            # before the student's forward
    losses = student(inputs, data_samples, mode='loss')
    losses = engine.add_terms(losses, inputs, data_samples)
"""
import contextlib
import inspect
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from mmkd.checkpoint_safety import allow_mmengine_checkpoints
from mmkd.registry import MODELS
from .schedules import Progress, TermSchedule, TwoStage
from .taps import FeatureRecorder, Tap, TapsComplete, TapSpec
from .teacher import build_teacher, check_preprocessing

#: ``stage=`` of a term under ``two_stage``: trained in stage 1 (hints), stage 2 (with the task loss) or both.
STAGES = (1, 2, 'both')


@dataclass(frozen=True)
class LossInputs:
    """What a loss's ``forward`` consumes, read from its parameter names (as mmrazor binds recorders
    to ``loss.forward``'s signature): ``student_*`` parameters take the student's taps in order and
    ``teacher_*`` the teacher's (FSP: ``student_first, student_second, teacher_first,
    teacher_second``); parameters named ``*_grad`` take the task losses' input gradients instead of
    taps (``mmkd.GradATLoss``); a last parameter ``gt_labels`` takes the batch's class labels, read
    from the data samples' ``gt_label`` (``mmkd.DKDLoss``)."""
    loss: str
    student: Tuple[str, ...]
    teacher: Tuple[str, ...]
    labels: bool = False

    @classmethod
    def of(cls, loss: nn.Module) -> 'LossInputs':
        params = [p.name for p in inspect.signature(loss.forward).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        labels = params[-1:] == [LABELS]
        inputs = cls(type(loss).__name__, tuple(n for n in params if n.startswith('student_')),
                     tuple(n for n in params if n.startswith('teacher_')), labels)
        if not inputs.student or len(inputs.student) + len(inputs.teacher) + labels != len(params):
            raise TypeError(f'{inputs.loss}.forward({", ".join(params)}): a distillation loss names its '
                            'inputs student_<what> and teacher_<what> (taps, bound in order) or '
                            f'student_grad and teacher_grad (input gradients), and may end with {LABELS}.')
        return inputs

    @property
    def input_gradients(self) -> bool:
        return all(name.endswith('_grad') for name in self.student + self.teacher)

    def __str__(self) -> str:
        return f'{self.loss}.forward({", ".join(self.student + self.teacher + (LABELS,) * self.labels)})'


#: The loss parameter that receives the batch's ground-truth class labels.
LABELS = 'gt_labels'


def batch_labels(data_samples, device: torch.device, term: str) -> Tensor:
    """The (N,) class labels of a classification batch, from each data sample's ``gt_label``."""
    if not data_samples or not all(hasattr(s, 'gt_label') for s in data_samples):
        raise ValueError(f'{term} takes the class labels of the batch ({LABELS}), but the data samples '
                         'carry no gt_label: it is a classification term (logits and one label per image).')
    return torch.stack([torch.as_tensor(s.gt_label).reshape(()) for s in data_samples]).to(device)


@dataclass
class Term:
    name: str
    loss: nn.Module
    inputs: LossInputs
    student: Tuple[Tap, ...]
    teacher: Tuple[Tap, ...]
    connector: Optional[nn.Module]
    schedule: TermSchedule
    stage: Union[int, str]

    @property
    def takes_input_gradients(self) -> bool:
        return self.inputs.input_gradients

    def describe(self) -> str:
        return (f"distillation term '{self.name}' ({type(self.loss).__name__}: student "
                f"{', '.join(map(str, self.student))} -> teacher {', '.join(map(str, self.teacher))})")


def default_name(loss: nn.Module) -> str:
    """The loss class's ``term_name`` if it sets one (GradATLoss: 'grad_at'), else its class name
    without 'Loss', lower case: NSTLoss -> 'nst', logged as ``loss_nst``."""
    name = type(loss).__name__
    return getattr(loss, 'term_name', name[:-4] if name.endswith('Loss') else name).lower()


def as_taps(spec: Union[TapSpec, Sequence[TapSpec], None]) -> Tuple[Tap, ...]:
    if spec is None:
        return ()
    if isinstance(spec, (str, dict)):
        return (Tap.parse(spec),)
    return tuple(Tap.parse(s) for s in spec)


def build_terms(configs: List[dict], connectors: Optional[nn.ModuleDict]) -> List[Term]:
    """Build the terms; their connectors go into ``connectors`` (None: connectors not allowed)."""
    terms, used_names = [], set()
    for index, cfg in enumerate(configs):
        cfg = dict(cfg)
        unknown = set(cfg) - {'loss', 'student', 'teacher', 'connector', 'schedule', 'stage', 'name'}
        if 'loss' not in cfg or unknown:
            raise ValueError(f'distill[{index}] = {cfg!r}: each term needs loss=dict(type=...) and may '
                             f'have student, teacher, connector, schedule, stage, name; unknown keys '
                             f'{sorted(unknown)}.')
        loss = MODELS.build(cfg['loss'])
        name = cfg.get('name') or default_name(loss)
        while name in used_names:
            name = f'{name}_{index}'
        used_names.add(name)
        student, teacher = as_taps(cfg.get('student')), as_taps(cfg.get('teacher'))
        inputs = LossInputs.of(loss)
        given = f'got student={cfg.get("student")!r}, teacher={cfg.get("teacher")!r}'
        if inputs.input_gradients and (student or teacher):
            raise ValueError(f"distill[{index}] ('{name}'): {inputs} takes the task losses' input "
                             f'gradients, not taps: remove student/teacher ({given}).')
        if not inputs.input_gradients and (len(student), len(teacher)) != (len(inputs.student),
                                                                            len(inputs.teacher)):
            raise ValueError(f"distill[{index}] ('{name}'): {inputs} takes {len(inputs.student)} student "
                             f'and {len(inputs.teacher)} teacher tap(s), bound in that order; {given}.')
        connector = None
        if cfg.get('connector') is not None:
            if connectors is None:
                raise ValueError(
                    f"distill[{index}] ('{name}') has a connector, which must be trained and saved with "
                    "the student: use the model wrapper (model=dict(type='mmkd.Distiller', ...)) rather "
                    'than mmkd.DistillationHook for FitNet/AB-style terms.')
            if len(student) != 1:
                raise ValueError(f"distill[{index}] ('{name}'): a connector maps one student tap; "
                                 f'{inputs} takes {len(student)}.')
            connector = MODELS.build(cfg['connector'])
            connectors[name] = connector
        stage = cfg.get('stage', 1)
        if stage not in STAGES:
            raise ValueError(f"distill[{index}] ('{name}'): stage must be one of {STAGES}, got {stage!r}.")
        terms.append(Term(name, loss, inputs, student, teacher, connector,
                          TermSchedule(**cfg.get('schedule', {})), stage))
    return terms


def scale_task_losses(losses: Dict[str, Union[Tensor, List[Tensor]]], factor: float) -> None:
    for key, value in losses.items():
        if 'loss' in key:
            losses[key] = [v * factor for v in value] if isinstance(value, (list, tuple)) else value * factor


#: ``teacher=dict(..., precision=...)``: the autocast the frozen teacher's forward runs under.
#: 'auto' keeps the caller's (the student's AMP, or none); the loss terms are computed in float32
#: whatever the teacher ran in.
TEACHER_PRECISIONS = {'auto': None, 'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class DistillationEngine:
    """Terms, taps and the teacher's forward. ``teacher_precision`` (a key of
    :data:`TEACHER_PRECISIONS`) and ``teacher_channels_last`` choose how the frozen teacher runs:
    ``'bf16'`` with channels_last is the fast choice on GPUs with bf16 matrix units (Ampere and
    later; docs/benchmarks.md measures the change of each loss value)."""

    def __init__(self, student: nn.Module, teacher: nn.Module, distill: List[dict],
                 two_stage: Optional[dict] = None, connectors: Optional[nn.ModuleDict] = None,
                 teacher_precision: str = 'auto', teacher_channels_last: bool = False) -> None:
        if not distill:
            raise ValueError('distill is empty: give at least one term, e.g. '
                             "dict(loss=dict(type='mmkd.NSTLoss'), student='backbone.layer4', "
                             "teacher='backbone.layer4').")
        if teacher_precision not in TEACHER_PRECISIONS:
            raise ValueError(f'teacher precision={teacher_precision!r}: choose one of '
                             f'{sorted(TEACHER_PRECISIONS)}.')
        self.teacher = teacher
        self.teacher_precision = teacher_precision
        self.teacher_channels_last = teacher_channels_last
        if teacher_channels_last:
            teacher.to(memory_format=torch.channels_last)
        self.terms = build_terms(distill, connectors)
        self.two_stage = TwoStage(**two_stage) if two_stage is not None else None
        self.student_taps = FeatureRecorder(student, [t for term in self.terms for t in term.student],
                                            'student')
        self.teacher_taps = FeatureRecorder(teacher, [t for term in self.terms for t in term.teacher],
                                            'teacher')
        self.teacher_calls = 0

    @classmethod
    def from_config(cls, student: nn.Module, teacher: dict, distill: List[dict],
                    two_stage: Optional[dict] = None,
                    connectors: Optional[nn.ModuleDict] = None) -> 'DistillationEngine':
        """The one build path of both front doors: builds and loads the teacher from its config
        (:func:`build_teacher`; ``precision`` and ``channels_last`` are this engine's), checks that it
        normalises its inputs as the student does, and builds the terms and taps."""
        allow_mmengine_checkpoints()   # the teacher's checkpoint; the runner's resume after it
        teacher = dict(teacher)
        precision = teacher.pop('precision', 'auto')
        channels_last = teacher.pop('channels_last', False)
        teacher_model = build_teacher(teacher)
        check_preprocessing(student, teacher_model)
        return cls(student, teacher_model, distill, two_stage, connectors, precision, channels_last)

    def remove(self) -> None:
        """Detach the taps from student and teacher (the end of a run)."""
        self.student_taps.remove()
        self.teacher_taps.remove()

    # ----------------------------------------------------------------- schedules
    def stage(self, progress: Progress) -> Optional[int]:
        return self.two_stage.stage(progress) if self.two_stage is not None else None

    def active_weights(self, progress: Progress) -> Dict[str, float]:
        stage = self.stage(progress)
        weights = {}
        for term in self.terms:
            if stage is not None and term.stage not in (stage, 'both'):
                continue
            factor = term.schedule.factor(progress)
            if factor > 0:
                weights[term.name] = factor
        return weights

    def task_loss_factor(self, progress: Progress) -> float:
        return 0.0 if self.stage(progress) == 1 else 1.0

    # ----------------------------------------------------------------- forward
    def begin_student_forward(self, mode: str) -> None:
        self.student_taps.reset()
        self.student_taps.recording = mode == 'loss'

    def add_terms(self, losses: dict, inputs: Tensor, data_samples=None,
                  progress: Optional[Progress] = None) -> dict:
        """Scale the task losses for the current stage and add the active terms' losses."""
        progress = progress or Progress.current()
        weights = self.active_weights(progress)
        factor = self.task_loss_factor(progress)
        if factor != 1.0:
            scale_task_losses(losses, factor)
        feature_terms = [t for t in self.terms if t.name in weights and not t.takes_input_gradients]
        if feature_terms:
            self.run_teacher(inputs, data_samples)
            for term in feature_terms:
                losses[f'loss_{term.name}'] = weights[term.name] * self.term_loss(term, data_samples)
        self.student_taps.reset()
        self.teacher_taps.reset()
        return losses

    def term_loss(self, term: Term, data_samples=None) -> Tensor:
        try:
            student = [self.student_taps.get(tap) for tap in term.student]
            if term.connector is not None:
                student = [term.connector(student[0])]
            teacher = [self.teacher_taps.get(tap) for tap in term.teacher]
            labels = [batch_labels(data_samples, student[0].device, term.describe())] if term.inputs.labels else []
            return term.loss(*student, *teacher, *labels)   # bound to forward's parameters at build time
        except ValueError as error:
            raise ValueError(f'{term.describe()}: {error}') from error

    def _teacher_autocast(self, device: torch.device):
        dtype = TEACHER_PRECISIONS[self.teacher_precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def run_teacher(self, inputs: Tensor, data_samples=None) -> None:
        """Run as little of the teacher as its taps need (the part of the model that holds them, and
        only up to the deepest tap), under no_grad, in the teacher's precision."""
        teacher = self.teacher
        param = next(teacher.parameters(), None)
        if param is not None and param.device != inputs.device:
            teacher.to(inputs.device)
        if teacher.training:
            teacher.eval()
        if self.teacher_channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        self.teacher_taps.reset()
        self.teacher_calls += 1
        roots = {tap.module.split('.')[0] for term in self.terms for tap in term.teacher}
        # Only this forward stops at the deepest tap; others (the input-gradient terms' loss) run whole.
        self.teacher_taps.stop_when_complete = True
        with torch.no_grad(), self._teacher_autocast(inputs.device):
            try:
                if roots <= {'backbone'} and hasattr(teacher, 'backbone'):
                    teacher.backbone(inputs)
                elif roots <= {'backbone', 'neck'} and hasattr(teacher, 'extract_feat'):
                    teacher.extract_feat(inputs)
                else:
                    teacher(inputs, data_samples, mode='tensor')
            except TapsComplete:
                pass
            finally:
                self.teacher_taps.stop_when_complete = False
