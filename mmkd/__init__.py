"""mmkd: knowledge transfer (KD, FitNet, AT, FSP, NST, AB) into object detection on OpenMMLab."""
from .checkpoint_safety import allow_mmengine_checkpoints
from .version import __version__

allow_mmengine_checkpoints()

from . import losses  # noqa: E402  (registers the losses)

__all__ = ['__version__', 'losses']
