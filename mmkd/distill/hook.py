"""Front door 1: ``mmkd.DistillationHook``, distillation added to an unmodified config."""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmkd.registry import HOOKS
from .engine import DistillationEngine


@HOOKS.register_module()
class DistillationHook(Hook):
    """Adds distillation terms to the loss dict of the runner's model::

        custom_hooks = [dict(
            type='mmkd.DistillationHook',
            teacher=dict(config='teacher_config.py', checkpoint='teacher.pth',
                         precision='bf16', channels_last=True),  # optional: how the teacher runs
            distill=[dict(loss=dict(type='mmkd.NSTLoss', loss_weight=50.0),
                          student='backbone.layer4', teacher='backbone.layer4')])]

    ``precision`` ('auto': the student's autocast; 'fp32', 'bf16', 'fp16') and ``channels_last``
    choose how the frozen teacher's forward runs (:class:`DistillationEngine`); the terms are
    computed in float32 either way. The teacher is built in ``before_run`` and lives in the hook, not in the model: it is never
    trained, never switched to train mode and never saved. Terms appear as ``loss_<name>`` in the
    student's loss dict, so they are logged and summed into ``loss``. Terms with connectors need
    trainable parameters saved with the student: use ``mmkd.Distiller`` for those.
    """

    priority = 'NORMAL'

    def __init__(self, teacher: dict, distill: List[dict], two_stage: Optional[dict] = None) -> None:
        self.teacher_cfg = teacher
        self.distill = distill
        self.two_stage = two_stage
        self.engine: Optional[DistillationEngine] = None
        self._handles = []

    def before_run(self, runner) -> None:
        student = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.engine = DistillationEngine.from_config(student, self.teacher_cfg, self.distill, self.two_stage)
        self._handles = [
            student.register_forward_pre_hook(self._begin_student_forward, with_kwargs=True),
            student.register_forward_hook(self._add_terms, with_kwargs=True),
        ]

    def after_run(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.engine.remove()

    @staticmethod
    def _mode(kwargs: dict) -> str:
        return kwargs.get('mode', 'tensor')

    def _begin_student_forward(self, module, args, kwargs) -> None:
        self.engine.begin_student_forward(self._mode(kwargs) if module.training else 'eval')

    def _add_terms(self, module, args, kwargs, output):
        if not module.training or self._mode(kwargs) != 'loss':
            return output
        inputs = kwargs['inputs'] if 'inputs' in kwargs else args[0]
        data_samples = kwargs.get('data_samples', args[1] if len(args) > 1 else None)
        return self.engine.add_terms(output, inputs, data_samples)
