"""mmkd's interpreter start-up hook: in an mmkd install, import order never matters.

Installing mmkd (``make setup``, any ``pip install``) puts ``mmkd-startup.pth`` in site-packages, a
one-line file that Python's ``site`` runs at start-up, as editable installs do with theirs. It calls
:func:`install`, which puts one finder on ``sys.meta_path`` and imports nothing else (no torch, no
mmcv): the finder acts only when one of two modules is first imported, by whichever code comes first.

- ``mmcv._ext`` (mmcv's compiled ops, imported by ``mmcv.ops``, so by every mmdet model): where mmcv
  has no compiled ops (mmcv-lite), the import gets :class:`mmkd.ops.TorchvisionExt`, mmkd's ops from
  torchvision; compiled ops, where installed, are imported as always (``MMKD_MMCV_OPS`` as for
  ``import mmkd``). mmdet's own ``tools/test.py``, ``mmdet.apis.init_detector`` or a script that
  imports ``mmdet.models`` before mmkd would otherwise fail with "No module named 'mmcv._ext'".
- ``mmengine.runner.checkpoint``: once it is loaded, torch's ``weights_only`` loader gets mmkd's
  allow-list for mmengine's checkpoints (:func:`mmkd.allow_mmengine_checkpoints`), so mmdet's own
  ``tools/train.py --resume`` works; everything else in a checkpoint is still refused.

Both load just the mmkd module they need (:mod:`mmkd.ops`, :mod:`mmkd.checkpoint_safety`), not the
``mmkd`` package: its ``__init__`` imports mmdet's models, and so ``mmcv.ops``, the very import in
progress. ``MMKD_STARTUP_HOOK=0`` switches the hook off; ``pip uninstall mmkd`` removes the ``.pth``.
"""
import os
import sys

SWITCH = 'MMKD_STARTUP_HOOK'
EXT = 'mmcv._ext'
CHECKPOINT_MODULE = 'mmengine.runner.checkpoint'


def load_mmkd_module(name: str):
    """Import ``mmkd.<name>`` without running ``mmkd/__init__`` when the package is not imported yet.

    ``import mmkd`` later finds the module in ``sys.modules`` and uses it: one copy of each class.
    """
    full = f'mmkd.{name}'
    if full in sys.modules:
        return sys.modules[full]
    import importlib
    if 'mmkd' in sys.modules:
        return importlib.import_module(full)
    import importlib.machinery
    import importlib.util
    package = importlib.util.find_spec('mmkd')   # finds the package; does not run its __init__
    spec = importlib.machinery.PathFinder.find_spec(full, package.submodule_search_locations)
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[full]
        raise
    return module


def allow_mmengine_checkpoints() -> None:
    load_mmkd_module('checkpoint_safety').allow_mmengine_checkpoints()


class CallAfterLoad:
    """Loader proxy: runs the real loader, then ``after()``; anything else is the real loader's."""

    def __init__(self, loader, after):
        self.loader = loader
        self.after = after

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.after()

    def __getattr__(self, name):
        return getattr(self.loader, name)


class StartupFinder:
    """On ``sys.meta_path``: answers for :data:`EXT` and wraps :data:`CHECKPOINT_MODULE`'s loader;
    every other name goes to the finders behind it at the cost of two string comparisons."""

    def find_spec(self, name, path=None, target=None):
        if name == EXT:
            # None leaves the import to the other finders: compiled ops, or mmcv's own error.
            return load_mmkd_module('ops').ext_spec(path)
        if name == CHECKPOINT_MODULE:
            spec = self.find_behind(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = CallAfterLoad(spec.loader, allow_mmengine_checkpoints)
            return spec
        return None

    def find_behind(self, name, path, target):
        """The spec the finders after this one give."""
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None


def install() -> bool:
    """Put :class:`StartupFinder` first on ``sys.meta_path`` once; False where switched off."""
    if os.environ.get(SWITCH, '1') == '0':
        return False
    if not any(isinstance(finder, StartupFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, StartupFinder())
    return True
