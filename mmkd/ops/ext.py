"""A stand-in for ``mmcv._ext`` (mmcv's compiled ops) built from torchvision and torch.

mmcv-lite installs in seconds but has no ``mmcv._ext``, and importing mmdet's models imports all of
``mmcv.ops``, which looks up every compiled op by name. mmdet's Faster R-CNN calls only ``nms``,
``roi_align_forward`` and ``roi_align_backward`` (and RetinaNet-style heads the CUDA focal loss), so
this module provides those with mmcv's exact semantics and answers every other name with a function
that raises :class:`CompiledOpsRequired` naming the op. Python-side mmcv (``mmcv.ops.nms``'s score
threshold, ``max_num``, ``batched_nms``; the autograd Functions) stays mmcv's own.
"""
import importlib.machinery
import importlib.util
import os
import sys
import types

from .focal_loss import sigmoid_focal_loss_backward, sigmoid_focal_loss_forward
from .nms import nms
from .roi_align import roi_align_backward, roi_align_forward
from .roi_pool import roi_pool_backward, roi_pool_forward
from .unsupported import CompiledOpsRequired

#: 'auto' (default): compiled ops when mmcv has them, else these; 'torchvision': these even when
#: compiled ops are installed (to compare the two); 'compiled': fail unless compiled ops are there.
OPS_ENV = 'MMKD_MMCV_OPS'
CHOICES = ('auto', 'torchvision', 'compiled')

PROVIDED_OPS = dict(
    nms=nms,
    roi_align_forward=roi_align_forward, roi_align_backward=roi_align_backward,
    roi_pool_forward=roi_pool_forward, roi_pool_backward=roi_pool_backward,
    sigmoid_focal_loss_forward=sigmoid_focal_loss_forward,
    sigmoid_focal_loss_backward=sigmoid_focal_loss_backward)


class TorchvisionExt(types.ModuleType):
    """``mmcv._ext`` with :data:`PROVIDED_OPS`; any other op name gives a function that raises."""

    def __init__(self):
        super().__init__('mmcv._ext', __doc__)
        self.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', loader=None)
        self.__dict__.update(PROVIDED_OPS)

    def __getattr__(self, name: str):
        # Dunder look-ups (inspect.getmodule asks for __file__, pickling for __reduce__ ...) must fail
        # as for any module, or mmengine's registry breaks when it inspects a registered class.
        if name.startswith('__') and name.endswith('__'):
            raise AttributeError(name)

        def unsupported(*args, **kwargs):
            raise CompiledOpsRequired(name)

        unsupported.__name__ = name
        return unsupported


def _has_compiled_ops() -> bool:
    loaded = sys.modules.get('mmcv._ext')
    if loaded is not None:
        return not isinstance(loaded, TorchvisionExt)
    if importlib.util.find_spec('mmcv') is None:
        raise ImportError('mmkd needs mmcv 2.1: `pip install mmcv-lite==2.1.0` (mmkd provides its '
                          'ops) or `make setup MMCV_OPS=compiled` (mmcv with compiled ops).')
    return importlib.util.find_spec('mmcv._ext') is not None


def install_mmcv_ext() -> str:
    """Make ``mmcv._ext`` importable; returns the backend in use, 'compiled' or 'torchvision'.

    Must run before ``mmcv.ops`` is first imported (``import mmkd`` does it first thing). Compiled
    ops, where installed, are kept unless ``MMKD_MMCV_OPS=torchvision`` asks otherwise.
    """
    choice = os.environ.get(OPS_ENV, 'auto')
    if choice not in CHOICES:
        raise ValueError(f'{OPS_ENV}={choice!r}: use one of {", ".join(CHOICES)}.')
    loaded = sys.modules.get('mmcv._ext')
    if isinstance(loaded, TorchvisionExt):
        return 'torchvision'
    compiled = _has_compiled_ops()
    if choice == 'compiled' and not compiled:
        raise ImportError(f"{OPS_ENV}=compiled, but mmcv has no compiled ops (mmcv._ext): this is "
                          'mmcv-lite or a build without ops. Run `make setup MMCV_OPS=compiled`.')
    if compiled and choice != 'torchvision':
        return 'compiled'
    if 'mmcv.ops' in sys.modules or loaded is not None:
        raise ImportError(f'{OPS_ENV}={choice}: mmcv.ops was imported before mmkd, with '
                          f'{"compiled ops" if compiled else "no mmcv._ext"}. Import mmkd first.')
    import mmcv
    ext = TorchvisionExt()
    sys.modules['mmcv._ext'] = ext
    mmcv._ext = ext
    return 'torchvision'


def mmcv_ops_backend() -> str:
    """'compiled', 'torchvision' or 'missing' (neither installed yet), for logs and checks."""
    loaded = sys.modules.get('mmcv._ext')
    if isinstance(loaded, TorchvisionExt):
        return 'torchvision'
    return 'compiled' if _has_compiled_ops() else 'missing'
