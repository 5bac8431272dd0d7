"""Front door 2: ``mmkd.Distiller``, a model that wraps a student and distils a frozen teacher."""
from typing import Dict, List, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmkd.registry import MODELS
from .engine import GRAD_SHARE_INTERVAL, DistillationEngine
from .hook import TEACHER_CHECK
from .schedules import Progress


@MODELS.register_module()
class Distiller(BaseModel):
    """``model = dict(type='mmkd.Distiller', student=<model cfg>, teacher=<teacher cfg>, distill=[...])``.

    Unlike the hook, terms may have a ``connector`` (FitNet, AB), trained with the student and
    saved under ``connectors.``; and a ``mmkd.GradATLoss`` term matches input gradients by double
    backpropagation. The student is saved under ``student.`` (``tools/extract_student.py`` writes
    it alone); the teacher is held outside the module tree, so it is never trained, switched to
    train mode, initialised or saved, but it follows the wrapper's ``.to()``/``.cuda()``/``.double()``.
    In val/test mode the Distiller is the student. ``grad_share=dict(interval=50)`` measures each
    term's gradient share every 50 iterations and ``teacher_check=dict(num_batches=4, strict=False)``
    scores the teacher before training (``mmkd.DistillDiagnosticsHook``, which tools/train.py adds,
    runs and logs both; None: off); terms with ``loss_weight='auto'`` keep their calibrated weights
    under ``auto_weights.``. ``compile=True`` (or a dict of ``torch.compile`` options; a config's
    top-level ``compile`` comes here through tools/train.py) compiles the student's and the teacher's
    forwards, taps included; the engine between them stays eager: traced, its per-iteration state
    (schedules, counters) recompiled mmengine's compiled train step at every iteration.
    """

    def __init__(self, student: dict, teacher: dict, distill: List[dict], two_stage: Optional[dict] = None,
                 grad_share: Optional[dict] = dict(interval=GRAD_SHARE_INTERVAL),
                 teacher_check: Optional[dict] = TEACHER_CHECK,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 compile: Union[bool, dict] = False) -> None:
        if data_preprocessor is not None:
            # The runner hands a config's top-level data_preprocessor to the model: it is the student's.
            student = dict(student)
            student.setdefault('data_preprocessor', data_preprocessor)
        student_model = MODELS.build(student)
        super().__init__(data_preprocessor=student_model.data_preprocessor, init_cfg=init_cfg)
        self.student = student_model
        self.teacher_check = teacher_check   # run by mmkd.DistillDiagnosticsHook before training
        self.connectors = nn.ModuleDict()
        self.engine = DistillationEngine.from_config(self.student, teacher, distill, two_stage,
                                                     self.connectors, grad_share)
        if len(self.engine.auto_weights):
            self.auto_weights = self.engine.auto_weights   # calibrated weights: saved, resumed
        if compile:
            options = {} if compile is True else dict(compile)
            teacher_model = self.engine.teacher
            # The engine runs the teacher's backbone or neck alone when the taps are there.
            for module in (self.student, teacher_model, getattr(teacher_model, 'backbone', None),
                           getattr(teacher_model, 'neck', None)):
                if isinstance(module, nn.Module):
                    module.compile(**options)   # in place: state-dict keys unchanged
        self._register_load_state_dict_pre_hook(self._student_keys_into_place)

    @property
    def teacher(self) -> nn.Module:
        return self.engine.teacher

    def _apply(self, fn, *args, **kwargs):
        # .to(), .cuda(), .double() ... reach the teacher too, although it is kept out of the module
        # tree (never trained, initialised or saved): the input-gradient path runs it directly.
        super()._apply(fn, *args, **kwargs)
        self.engine.teacher._apply(fn, *args, **kwargs)
        return self

    def _student_keys_into_place(self, state_dict, prefix, *args) -> None:
        """``load_from`` a plain student checkpoint (keys without ``student.``) fills the student,
        instead of loading nothing; a checkpoint of neither kind is refused, naming its keys."""
        keys = [k for k in state_dict if k.startswith(prefix)]
        if not keys or any(k.startswith(prefix + 'student.') for k in keys):
            return
        own = set(self.student.state_dict())
        fitting = sum(k[len(prefix):] in own for k in keys)
        if not fitting:
            raise ValueError(
                f"checkpoint for mmkd.Distiller has no 'student.' keys and none of the student's own "
                f"keys (it has {', '.join(keys[:3])}, ...): it is neither a Distiller nor a student "
                'checkpoint of this model.')
        for key in keys:
            if not key.startswith(prefix + 'connectors.'):
                state_dict[prefix + 'student.' + key[len(prefix):]] = state_dict.pop(key)
        print_log(f"a plain student checkpoint: its keys were loaded under 'student.' ({fitting} of the "
                  f'student\'s {len(own)} tensors fit).', logger='current')

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        self.engine.begin_student_forward(mode if self.training else 'eval')
        if mode != 'loss':
            return self.student(inputs, data_samples, mode)
        progress = Progress.current()
        weights = self.engine.active_weights(progress)
        gradient_terms = [t for t in self.engine.terms if t.takes_input_gradients and t.name in weights]
        if gradient_terms:
            inputs = inputs.detach().requires_grad_()
        losses = self.student(inputs, data_samples, mode='loss')
        computed = {}
        if gradient_terms:
            student_grad, teacher_grad = self.input_gradients(losses, inputs, data_samples)
            computed = {term.name: term.loss(student_grad, teacher_grad) for term in gradient_terms}
        return self.engine.add_terms(losses, inputs, data_samples, progress, computed)

    def input_gradients(self, student_losses: Dict[str, Tensor], inputs: Tensor, data_samples):
        """(dL_S/dx with a graph for double backprop, dL_T/dx) of the task losses."""
        student_loss, _ = self.student.parse_losses(student_losses)
        student_grad, = torch.autograd.grad(student_loss, inputs, create_graph=True)
        teacher_inputs = inputs.detach().requires_grad_()
        with torch.enable_grad():
            teacher_loss, _ = self.teacher.parse_losses(self.teacher(teacher_inputs, data_samples, mode='loss'))
            teacher_grad, = torch.autograd.grad(teacher_loss, teacher_inputs)
        return student_grad, teacher_grad
