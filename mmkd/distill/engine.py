"""The distillation engine behind both front doors (``DistillationHook`` and ``Distiller``).

It owns the teacher, the feature taps on student and teacher, the connectors, the loss terms and
their schedules, and adds the active terms to the student's loss dict::

    engine.begin_student_forward(mode)            # before the student's forward
    losses = student(inputs, data_samples, mode='loss')
    losses = engine.add_terms(losses, inputs, data_samples)
"""
import contextlib
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from mmkd.checkpoint_safety import allow_mmengine_checkpoints
from mmkd.registry import MODELS
from .gradient_share import CALIBRATION_ITERS, AutoWeight, gradients, share, task_loss
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
    auto: Optional[AutoWeight] = None   # loss_weight='auto': the weight, calibrated then frozen

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
        unknown = set(cfg) - {'loss', 'student', 'teacher', 'connector', 'schedule', 'stage', 'name',
                              'auto_weight'}
        if 'loss' not in cfg or unknown:
            raise ValueError(f'distill[{index}] = {cfg!r}: each term needs loss=dict(type=...) and may '
                             f'have student, teacher, connector, schedule, stage, name, auto_weight; '
                             f'unknown keys {sorted(unknown)}.')
        loss_cfg = dict(cfg['loss'])
        auto = loss_cfg.get('loss_weight') == 'auto'
        if auto:
            loss_cfg['loss_weight'] = 1.0   # the engine applies the calibrated weight
        loss = MODELS.build(loss_cfg)
        name = cfg.get('name') or default_name(loss)
        while name in used_names:
            name = f'{name}_{index}'
        used_names.add(name)
        auto_weight = None
        if auto != ('auto_weight' in cfg) or (auto and 'share' not in cfg['auto_weight']):
            raise ValueError(f"distill[{index}] ('{name}'): loss_weight='auto' goes with "
                             "auto_weight=dict(share=<target gradient share, e.g. 0.5>, "
                             f'iters={CALIBRATION_ITERS}) in the term, and only with it; got loss_weight='
                             f"{cfg['loss'].get('loss_weight')!r}, auto_weight={cfg.get('auto_weight')!r}.")
        if auto:
            auto_weight = AutoWeight(name, **cfg['auto_weight'])
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
                          TermSchedule(**cfg.get('schedule', {})), stage, auto_weight))
    return terms


def scale_task_losses(losses: Dict[str, Union[Tensor, List[Tensor]]], factor: float) -> None:
    for key, value in losses.items():
        if 'loss' in key:
            losses[key] = [v * factor for v in value] if isinstance(value, (list, tuple)) else value * factor


#: ``teacher=dict(..., precision=...)``: the autocast the frozen teacher's forward runs under.
#: 'auto' keeps the caller's (the student's AMP, or none); the loss terms are computed in float32
#: whatever the teacher ran in.
TEACHER_PRECISIONS = {'auto': None, 'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


#: ``grad_share=dict(interval=...)`` of both front doors: measure every term's gradient share
#: (gradient_share.py) every this many iterations; ``grad_share=None`` turns it off.
GRAD_SHARE_INTERVAL = 50


class DistillationEngine:
    """Terms, taps and the teacher's forward. ``teacher_precision`` (a key of
    :data:`TEACHER_PRECISIONS`) and ``teacher_channels_last`` choose how the frozen teacher runs:
    ``'bf16'`` with channels_last is the fast choice on GPUs with bf16 matrix units (Ampere and
    later; docs/benchmarks.md measures the change of each loss value). Every
    ``grad_share_interval`` iterations (None: never) it measures each active term's gradient share
    on the student, kept in :attr:`latest_shares` for the front doors to log."""

    def __init__(self, student: nn.Module, teacher: nn.Module, distill: List[dict],
                 two_stage: Optional[dict] = None, connectors: Optional[nn.ModuleDict] = None,
                 teacher_precision: str = 'auto', teacher_channels_last: bool = False,
                 grad_share_interval: Optional[int] = GRAD_SHARE_INTERVAL,
                 teacher_source: str = 'the teacher') -> None:
        if not distill:
            raise ValueError('distill is empty: give at least one term, e.g. '
                             "dict(loss=dict(type='mmkd.NSTLoss'), student='backbone.layer4', "
                             "teacher='backbone.layer4').")
        if teacher_precision not in TEACHER_PRECISIONS:
            raise ValueError(f'teacher precision={teacher_precision!r}: choose one of '
                             f'{sorted(TEACHER_PRECISIONS)}.')
        if grad_share_interval is not None and grad_share_interval < 1:
            raise ValueError(f'grad_share interval must be >= 1 (or grad_share=None), got {grad_share_interval}.')
        self.student = student
        self.teacher = teacher
        self.grad_share_interval = grad_share_interval
        #: The loss scale the optimizer applies this step (fp16 AMP's GradScaler; the front doors'
        #: hooks set it): shares are measured on scaled losses, as the step's own backward runs, so
        #: small fp16 gradients do not underflow to 0; the ratio itself is scale-free.
        self.loss_scale: Callable[[], float] = lambda: 1.0
        #: dict(iter=i, shares={term: ||grad(weighted term)|| / ||grad(task)||}, weights={term: w})
        self.latest_shares: Optional[dict] = None
        self.teacher_precision = teacher_precision
        self.teacher_channels_last = teacher_channels_last
        if teacher_channels_last:
            teacher.to(memory_format=torch.channels_last)
        self.terms = build_terms(distill, connectors)
        self.auto_weights = nn.ModuleDict({t.name: t.auto for t in self.terms if t.auto is not None})
        self.two_stage = TwoStage(**two_stage) if two_stage is not None else None
        if self.two_stage is not None:
            # Stage 1 trains with the task loss at 0: no task gradient to calibrate a share against.
            for term in self.terms:
                if term.auto is not None and term.stage in (1, 'both'):
                    raise ValueError(
                        f"distillation term '{term.name}': loss_weight='auto' calibrates its gradient share "
                        f"against the task loss's, which two_stage's stage 1 switches off (stage={term.stage!r}). "
                        "Give it a number (loss_weight=...), or stage=2.")
        self.student_taps = FeatureRecorder(student, [t for term in self.terms for t in term.student],
                                            'student')
        self.teacher_taps = FeatureRecorder(teacher, [t for term in self.terms for t in term.teacher],
                                            'teacher')
        self.teacher_calls = 0
        self.teacher_source = teacher_source   # names the teacher in the teacher check's messages

    @classmethod
    def from_config(cls, student: nn.Module, teacher: dict, distill: List[dict],
                    two_stage: Optional[dict] = None, connectors: Optional[nn.ModuleDict] = None,
                    grad_share: Optional[dict] = dict(interval=GRAD_SHARE_INTERVAL)) -> 'DistillationEngine':
        """The one build path of both front doors: builds and loads the teacher from its config
        (:func:`build_teacher`; ``precision`` and ``channels_last`` are this engine's), checks that it
        normalises its inputs as the student does, and builds the terms and taps."""
        allow_mmengine_checkpoints()   # the teacher's checkpoint; the runner's resume after it
        teacher = dict(teacher)
        precision = teacher.pop('precision', 'auto')
        channels_last = teacher.pop('channels_last', False)
        teacher_model = build_teacher(teacher)
        check_preprocessing(student, teacher_model)
        if grad_share is not None and set(grad_share) - {'interval'}:
            raise ValueError(f'grad_share={grad_share!r}: the only key is interval (or grad_share=None).')
        interval = None if grad_share is None else grad_share.get('interval', GRAD_SHARE_INTERVAL)
        source = f"the teacher ({teacher.get('config', type(teacher_model).__name__)}, checkpoint {teacher.get('checkpoint')})"
        return cls(student, teacher_model, distill, two_stage, connectors, precision, channels_last, interval, source)

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
                  progress: Optional[Progress] = None, computed: Optional[Dict[str, Tensor]] = None) -> dict:
        """Scale the task losses for the current stage and add the active terms' losses, each
        schedule factor x weight x loss; ``computed``: losses of terms already evaluated (the
        Distiller's input-gradient terms), at weight 1."""
        progress = progress or Progress.current()
        weights = self.active_weights(progress)
        factor = self.task_loss_factor(progress)
        if factor != 1.0:
            scale_task_losses(losses, factor)
        raw = dict(computed or {})
        feature_terms = [t for t in self.terms if t.name in weights and not t.takes_input_gradients]
        if feature_terms:
            self.run_teacher(inputs, data_samples)
            for term in feature_terms:
                raw[term.name] = self.term_loss(term, data_samples)
        self.student_taps.reset()
        self.teacher_taps.reset()
        active = [t for t in self.terms if t.name in raw]
        self.measure_shares(progress, losses, active, raw, weights)
        for term in active:
            weight = term.auto.current() if term.auto is not None else 1.0
            losses[f'loss_{term.name}'] = weights[term.name] * weight * raw[term.name]
        idle = [p for t in self.terms if t.connector is not None and t.name not in raw for p in t.connector.parameters()]
        if idle:
            # An idle term's connector (another stage, a finished schedule) is still a registered
            # parameter: DDP expects a gradient for each one every iteration and stops the run
            # otherwise. Added at weight 0 to a task loss (whose logged value stays the same), the
            # connector stays in the graph with a zero gradient, in 1 process as in N.
            key = next(k for k, v in losses.items() if 'loss' in k and isinstance(v, Tensor))
            losses[key] = losses[key] + 0.0 * sum(p.sum() for p in idle)
        return losses

    def measure_shares(self, progress: Progress, losses: dict, active: List[Term], raw: Dict[str, Tensor],
                       factors: Dict[str, float]) -> None:
        """Every ``grad_share_interval`` iterations, and while an auto weight is calibrating: each
        term's gradient share (gradient_share.py), from the graph of this step."""
        calibrating = {t.name for t in active if t.auto is not None and not t.auto.frozen}
        due = self.grad_share_interval is not None and progress.iter % self.grad_share_interval == 0
        if not (due or calibrating):
            return
        params = [p for p in self.student.parameters() if p.requires_grad]
        exclude = [f'loss_{t.name}' for t in self.terms]
        scale = self.loss_scale()
        task_grads = gradients(task_loss(losses, exclude) * scale, params)
        shares, weights = {}, {}
        for term in active if due else [t for t in active if t.name in calibrating]:
            ratio = share(gradients(raw[term.name] * scale, params), task_grads)
            if term.name in calibrating:
                term.auto.add(None if math.isnan(ratio) else ratio)
            weights[term.name] = factors[term.name] * (term.auto.current() if term.auto is not None else 1.0)
            shares[term.name] = ratio * weights[term.name]
        if due:
            self.latest_shares = dict(iter=progress.iter, shares=shares, weights=weights)

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
