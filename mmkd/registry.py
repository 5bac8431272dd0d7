"""mmkd's registries: children of mmdet's under the scope ``mmkd``.

A plain mmdet config reaches mmkd's modules as ``type='mmkd.NSTLoss'`` once it has
``custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)``; inside mmkd's own configs
(``default_scope = 'mmkd'``) every mmdet and mmengine type resolves through the parents. Each
registry also lists mmdet's locations, so that building from the ``mmkd`` scope imports (and so
registers) mmdet's modules, which a lookup in the parent registry needs.
"""
from mmdet import registry as mmdet
from mmengine.registry import Registry


def _child_of(parent: Registry, *locations: str) -> Registry:
    return Registry(parent.name, parent=parent, scope='mmkd', locations=list(locations))


RUNNERS = _child_of(mmdet.RUNNERS, 'mmdet.engine.runner')
RUNNER_CONSTRUCTORS = _child_of(mmdet.RUNNER_CONSTRUCTORS, 'mmdet.engine.runner')
LOOPS = _child_of(mmdet.LOOPS, 'mmdet.engine.runner')
HOOKS = _child_of(mmdet.HOOKS, 'mmdet.engine.hooks')
DATASETS = _child_of(mmdet.DATASETS, 'mmdet.datasets')
DATA_SAMPLERS = _child_of(mmdet.DATA_SAMPLERS, 'mmdet.datasets.samplers')
TRANSFORMS = _child_of(mmdet.TRANSFORMS, 'mmdet.datasets.transforms')
MODELS = _child_of(mmdet.MODELS, 'mmdet.models')
MODEL_WRAPPERS = _child_of(mmdet.MODEL_WRAPPERS, 'mmdet.models')
WEIGHT_INITIALIZERS = _child_of(mmdet.WEIGHT_INITIALIZERS, 'mmdet.models')
OPTIMIZERS = _child_of(mmdet.OPTIMIZERS, 'mmdet.engine.optimizers')
OPTIM_WRAPPERS = _child_of(mmdet.OPTIM_WRAPPERS, 'mmdet.engine.optimizers')
OPTIM_WRAPPER_CONSTRUCTORS = _child_of(mmdet.OPTIM_WRAPPER_CONSTRUCTORS, 'mmdet.engine.optimizers')
PARAM_SCHEDULERS = _child_of(mmdet.PARAM_SCHEDULERS, 'mmdet.engine.schedulers')
METRICS = _child_of(mmdet.METRICS, 'mmdet.evaluation')
EVALUATOR = _child_of(mmdet.EVALUATOR, 'mmdet.evaluation')
TASK_UTILS = _child_of(mmdet.TASK_UTILS, 'mmdet.models')
VISUALIZERS = _child_of(mmdet.VISUALIZERS, 'mmdet.visualization')
VISBACKENDS = _child_of(mmdet.VISBACKENDS, 'mmdet.visualization')
LOG_PROCESSORS = _child_of(mmdet.LOG_PROCESSORS, 'mmdet.engine')
