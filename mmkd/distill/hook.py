"""Front door 1: ``mmkd.DistillationHook``, distillation added to an unmodified config; and
``mmkd.DistillDiagnosticsHook``, the same diagnostics for ``mmkd.Distiller`` models."""
import math
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from mmkd.registry import HOOKS
from .engine import GRAD_SHARE_INTERVAL, DistillationEngine
from .teacher_check import check_teacher

#: ``teacher_check=`` default of both front doors (teacher_check.py); None turns the check off.
TEACHER_CHECK = dict(num_batches=4, strict=False, margin=0.05)


def unwrapped(model):
    return model.module if is_model_wrapper(model) else model


def run_teacher_check(runner, engine: DistillationEngine, options: Optional[dict]) -> None:
    if options is not None:
        check_teacher(runner, engine.teacher, engine.student, engine.teacher_source, **{**TEACHER_CHECK, **options})


def use_loss_scale(runner, engine: DistillationEngine) -> None:
    """Gradient shares measured on the losses as the optimizer scales them (fp16 AMP)."""
    scaler = getattr(getattr(runner, 'optim_wrapper', None), 'loss_scaler', None)
    if scaler is not None:
        engine.loss_scale = scaler.get_scale


def log_gradient_shares(runner, engine: DistillationEngine) -> None:
    """The shares measured in this iteration, if any: a log line and ``grad_share_<term>`` scalars."""
    latest = engine.latest_shares
    if latest is None or latest['iter'] != runner.iter:
        return
    shares = latest['shares']
    parts = ', '.join(f'{name} {share:.3g}' if not math.isnan(share) else f'{name} n/a (no task gradient)'
                      for name, share in shares.items())
    print_log(f'Iter(train) [{runner.iter + 1}] gradient share ||grad term|| / ||grad task|| on the student '
              f'parameters each term reaches: {parts}', logger='current')
    scalars = {f'grad_share_{name}': share for name, share in shares.items() if not math.isnan(share)}
    if scalars:
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)


@HOOKS.register_module()
class DistillationHook(Hook):
    """Adds distillation terms to the loss dict of the runner's model::

        custom_hooks = [dict(
            type='mmkd.DistillationHook',
            teacher=dict(config='teacher_config.py', checkpoint='teacher.pth',
                         precision='bf16', channels_last=True),  # optional: how the teacher runs
            distill=[dict(loss=dict(type='mmkd.NSTLoss', loss_weight=50.0),
                          student='backbone.layer4', teacher='backbone.layer4')],
            grad_share=dict(interval=50),                         # optional (None: off)
            teacher_check=dict(num_batches=4, strict=False))]     # optional (None: off)

    ``precision`` ('auto': the student's autocast; 'fp32', 'bf16', 'fp16') and ``channels_last``
    choose how the frozen teacher's forward runs (:class:`DistillationEngine`); the terms are
    computed in float32 either way. The teacher is built in ``before_run`` and lives in the hook,
    not in the model: it is never trained, never switched to train mode and never saved. Terms
    appear as ``loss_<name>`` in the student's loss dict, so they are logged and summed into
    ``loss``. Terms with connectors need trainable parameters saved with the student: use
    ``mmkd.Distiller`` for those.

    Diagnostics: before the first iteration the teacher is scored on the first validation batches
    (teacher_check.py: a warning near chance, an error with ``strict=True``); every
    ``grad_share.interval`` iterations each term's gradient share is logged and written as
    ``grad_share_<term>`` scalars; calibrated ``loss_weight='auto'`` weights are kept in the
    checkpoint (``mmkd_auto_weights``) and restored on resume.
    """

    priority = 'NORMAL'

    def __init__(self, teacher: dict, distill: List[dict], two_stage: Optional[dict] = None,
                 grad_share: Optional[dict] = dict(interval=GRAD_SHARE_INTERVAL),
                 teacher_check: Optional[dict] = TEACHER_CHECK) -> None:
        self.teacher_cfg = teacher
        self.distill = distill
        self.two_stage = two_stage
        self.grad_share = grad_share
        self.teacher_check = teacher_check
        self.engine: Optional[DistillationEngine] = None
        self._handles = []

    def before_run(self, runner) -> None:
        # runner.test() / runner.val() call before_run too, having built only their own loop: they
        # need no teacher (nor its checkpoint). runner.train() has built its loop by now.
        loop = getattr(runner, '_train_loop', None)
        if not isinstance(loop, BaseLoop) and any(
                isinstance(getattr(runner, f'_{name}_loop', None), BaseLoop) for name in ('val', 'test')):
            return
        student = unwrapped(runner.model)
        self.engine = DistillationEngine.from_config(student, self.teacher_cfg, self.distill, self.two_stage,
                                                     grad_share=self.grad_share)
        self._handles = [
            student.register_forward_pre_hook(self._begin_student_forward, with_kwargs=True),
            student.register_forward_hook(self._add_terms, with_kwargs=True),
        ]
        if isinstance(loop, BaseLoop):
            # mmengine calls after_run only when training succeeds: if it raises, the student must not
            # keep adding the terms to its losses (a notebook or a script that goes on with the model).
            run = loop.run

            def run_then_detach(*args, **kwargs):
                try:
                    return run(*args, **kwargs)
                except BaseException:
                    self._detach()
                    raise

            loop.run = run_then_detach

    def before_train(self, runner) -> None:
        use_loss_scale(runner, self.engine)
        run_teacher_check(runner, self.engine, self.teacher_check)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        log_gradient_shares(runner, self.engine)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.engine is not None and len(self.engine.auto_weights):
            checkpoint['mmkd_auto_weights'] = self.engine.auto_weights.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.engine is not None and len(self.engine.auto_weights) and 'mmkd_auto_weights' in checkpoint:
            self.engine.auto_weights.load_state_dict(checkpoint['mmkd_auto_weights'])

    def after_run(self, runner) -> None:
        self._detach()

    def _detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self.engine is not None:
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


@HOOKS.register_module()
class DistillDiagnosticsHook(Hook):
    """The teacher check and the gradient-share log of an ``mmkd.Distiller`` model (the hook front
    door does both itself); ``tools/train.py`` adds it to every Distiller run. The options are the
    Distiller's own ``teacher_check`` and ``grad_share``."""

    priority = 'NORMAL'

    @staticmethod
    def _distiller(runner):
        model = unwrapped(runner.model)
        if not isinstance(getattr(model, 'engine', None), DistillationEngine):
            raise TypeError(f'mmkd.DistillDiagnosticsHook needs an mmkd.Distiller model, got '
                            f'{type(model).__name__}; with mmkd.DistillationHook leave it out.')
        return model

    def before_train(self, runner) -> None:
        model = self._distiller(runner)
        use_loss_scale(runner, model.engine)
        run_teacher_check(runner, model.engine, model.teacher_check)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        log_gradient_shares(runner, self._distiller(runner).engine)
