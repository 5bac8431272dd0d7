"""mmkd: knowledge transfer (KD, FitNet, AT, FSP, NST, AB) into object detection on OpenMMLab."""
from .checkpoint_safety import allow_mmengine_checkpoints
from .version import __version__

allow_mmengine_checkpoints()

# Importing registers every module, in pipeline order.
from . import losses  # noqa: E402
from . import distill  # noqa: E402
from . import models  # noqa: E402
from . import datasets  # noqa: E402
from . import evaluation  # noqa: E402

__all__ = ['__version__', 'datasets', 'distill', 'evaluation', 'losses', 'models']
