"""A stand-in for ``mmcv._ext`` (mmcv's compiled ops) built from torchvision and torch.

mmcv-lite installs in seconds but has no ``mmcv._ext``, and importing mmdet's models imports all of
``mmcv.ops``, which looks up every compiled op by name. mmdet's Faster R-CNN calls only ``nms``,
``roi_align_forward`` and ``roi_align_backward`` (and RetinaNet-style heads the CUDA focal loss), so
this module provides those with mmcv's exact semantics and answers every other name with a function
that raises :class:`CompiledOpsRequired` naming the op. Python-side mmcv (``mmcv.ops.nms``'s score
threshold, ``max_num``, ``batched_nms``; the autograd Functions) stays mmcv's own.
"""
import importlib.abc
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
    import mmcv
    # The path finder, not importlib.util.find_spec: the start-up hook (mmkd_startup) answers for
    # mmcv._ext on sys.meta_path, and this asks whether mmcv's own files have it.
    return importlib.machinery.PathFinder.find_spec('mmcv._ext', mmcv.__path__) is not None


def _use_torchvision_ops() -> bool:
    """Whether mmcv._ext should be :class:`TorchvisionExt`, by ``MMKD_MMCV_OPS`` and what mmcv has."""
    choice = os.environ.get(OPS_ENV, 'auto')
    if choice not in CHOICES:
        raise ValueError(f'{OPS_ENV}={choice!r}: use one of {", ".join(CHOICES)}.')
    compiled = _has_compiled_ops()
    if choice == 'compiled' and not compiled:
        raise ImportError(f"{OPS_ENV}=compiled, but mmcv has no compiled ops (mmcv._ext): this is "
                          'mmcv-lite or a build without ops. Run `make setup MMCV_OPS=compiled`.')
    return not compiled or choice == 'torchvision'


def install_mmcv_ext() -> str:
    """Make ``mmcv._ext`` importable; returns the backend in use, 'compiled' or 'torchvision'.

    Must run before ``mmcv.ops`` is first imported (``import mmkd`` does it first thing; the
    start-up hook, where installed, already did it on the first import of ``mmcv._ext``). Compiled
    ops, where installed, are kept unless ``MMKD_MMCV_OPS=torchvision`` asks otherwise.
    """
    loaded = sys.modules.get('mmcv._ext')
    if isinstance(loaded, TorchvisionExt):
        return 'torchvision'
    if not _use_torchvision_ops():
        return 'compiled'
    if 'mmcv.ops' in sys.modules or loaded is not None:
        raise ImportError(f'{OPS_ENV}={os.environ.get(OPS_ENV, "auto")}: mmcv.ops was imported before '
                          f'mmkd, with {"compiled ops" if loaded is not None else "no mmcv._ext"}, and '
                          'the start-up hook is off (MMKD_STARTUP_HOOK=0) or not installed (mmkd-startup.pth, '
                          'README "Set-up"). Import mmkd first, or reinstall mmkd.')
    import mmcv
    ext = TorchvisionExt()
    sys.modules['mmcv._ext'] = ext
    mmcv._ext = ext
    return 'torchvision'


class TorchvisionExtLoader(importlib.abc.Loader):
    """Loads ``mmcv._ext`` as a :class:`TorchvisionExt` (for the start-up hook's finder)."""

    def create_module(self, spec):
        return TorchvisionExt()

    def exec_module(self, module):
        pass


def ext_spec(path=None):
    """The start-up hook's answer for ``mmcv._ext``: a spec of :class:`TorchvisionExt` where mmkd
    provides the ops, None where mmcv's compiled ops are to be imported as usual."""
    if not _use_torchvision_ops():
        return None
    return importlib.machinery.ModuleSpec('mmcv._ext', TorchvisionExtLoader())


def mmcv_ops_backend() -> str:
    """'compiled', 'torchvision' or 'missing' (neither installed yet), for logs and checks."""
    loaded = sys.modules.get('mmcv._ext')
    if isinstance(loaded, TorchvisionExt):
        return 'torchvision'
    return 'compiled' if _has_compiled_ops() else 'missing'
