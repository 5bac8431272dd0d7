"""mmcv's compiled ops from torchvision, for installs with mmcv-lite (see :mod:`mmkd.ops.ext`)."""
from .ext import OPS_ENV, TorchvisionExt, ext_spec, install_mmcv_ext, mmcv_ops_backend
from .unsupported import CompiledOpsRequired

__all__ = ['OPS_ENV', 'CompiledOpsRequired', 'TorchvisionExt', 'ext_spec', 'install_mmcv_ext', 'mmcv_ops_backend']
