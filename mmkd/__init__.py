"""mmkd: knowledge transfer (KD, FitNet, AT, FSP, NST, AB) into object detection on OpenMMLab."""
# The start-up hook (mmkd_startup) may have loaded these two before this package: binding them here
# makes them attributes of mmkd as an ordinary import would.
from . import checkpoint_safety, ops
from .checkpoint_safety import allow_mmengine_checkpoints
from .ops import install_mmcv_ext
from .version import __version__

# Before anything imports mmcv.ops (mmdet's models do): with mmcv-lite, mmcv._ext comes from
# torchvision; compiled ops, where installed, stay.
install_mmcv_ext()
# allow_mmengine_checkpoints() (torch's weights_only loader reads mmengine checkpoints) is not an
# import side effect: the start-up hook makes it when mmengine's checkpoint module loads, and mmkd's
# tools and front doors call it (mmkd/checkpoint_safety.py).

# Importing registers every module, in pipeline order.
from . import losses  # noqa: E402
from . import distill  # noqa: E402
from . import models  # noqa: E402
from . import datasets  # noqa: E402
from . import evaluation  # noqa: E402
from . import engine  # noqa: E402

__all__ = ['__version__', 'allow_mmengine_checkpoints', 'datasets', 'distill', 'engine', 'evaluation', 'losses', 'models', 'ops']
