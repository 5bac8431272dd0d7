"""The start-up hook (mmkd_startup.py, installed as mmkd-startup.pth): import order never matters.

Each case runs in a fresh interpreter of this venv, from a folder outside the checkout, so only what
is installed (the .pth that `make setup` put in site-packages) is on the path, and the code under test
never imports mmkd itself.
"""
import os
import os.path as osp
import subprocess
import sys
import sysconfig
import textwrap
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SITE = sysconfig.get_paths()['purelib']
HEAVY = ('torch', 'numpy', 'mmcv', 'mmengine', 'mmdet', 'mmkd')


def fresh(code, cwd, **env):
    """(returncode, stdout + stderr) of ``code`` in a new interpreter; env entries of None are unset."""
    environment = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'MMKD_STARTUP_HOOK')}
    environment.update({k: v for k, v in env.items() if v is not None})
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=str(cwd), env=environment,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_make_setup_installed_the_hook_in_the_record():
    """The .pth is in this venv's site-packages and in mmkd's RECORD: `pip uninstall mmkd` removes it."""
    from importlib.metadata import distributions
    installed, = distributions(name='mmkd', path=[SITE])   # not the checkout's mmkd.egg-info
    files = {str(f) for f in installed.files}
    assert 'mmkd-startup.pth' in files
    with open(osp.join(SITE, 'mmkd-startup.pth')) as f:
        assert f.read().strip() == 'import mmkd_startup; mmkd_startup.install()'


def test_hook_imports_nothing_heavy_at_start(tmp_path):
    code = f"""
        import sys
        print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}),
              [type(f).__name__ for f in sys.meta_path].count('StartupFinder'))
    """
    rc, out = fresh(code, tmp_path)
    assert rc == 0 and out.strip() == '[] 1', out
    rc, out = fresh(code, tmp_path, MMKD_STARTUP_HOOK='0')
    assert rc == 0 and out.strip() == '[] 0', out


# The first imports of mmdet's own entry points: its apis (init_detector, DetInferencer), the first
# import of its tools/test.py, and any script that builds a model before it would import mmkd.
MMDET_FIRST = ['from mmdet.apis import DetInferencer, inference_detector, init_detector',
               'import mmdet.engine.hooks.utils',
               'import mmdet.models']


@pytest.mark.parametrize('first', MMDET_FIRST)
def test_mmdet_first_gets_mmkd_ops(first, tmp_path):
    """With mmcv-lite, mmcv.ops works whatever comes first, with mmkd's ops (nms run as a check);
    without the hook the same import fails as it did before it existed."""
    from mmkd.ops import mmcv_ops_backend
    if mmcv_ops_backend() == 'compiled':
        pytest.skip('this venv has mmcv with compiled ops (MMCV_OPS=compiled): the hook leaves them; '
                    'test_hook_never_replaces_compiled_ops covers that case')
    code = f"""
        {first}
        import sys, torch
        from mmcv.ops import nms
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
        dets, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
        print(type(sys.modules['mmcv._ext']).__name__, keep.tolist(), 'mmkd' in sys.modules)
    """
    rc, out = fresh(code, tmp_path)
    assert rc == 0 and out.split('\n')[-2] == 'TorchvisionExt [0, 2] False', out
    rc, out = fresh(code, tmp_path, MMKD_STARTUP_HOOK='0')
    assert rc != 0 and "No module named 'mmcv._ext'" in out, out


def test_import_mmkd_after_mmdet_reuses_what_the_hook_loaded(tmp_path):
    code = """
        import mmdet.models, sys
        ext = sys.modules['mmcv._ext']
        import mmkd
        from mmkd.ops import TorchvisionExt, mmcv_ops_backend
        print(isinstance(ext, TorchvisionExt), mmcv_ops_backend(), mmkd.ops is sys.modules['mmkd.ops'],
              mmkd.checkpoint_safety is sys.modules['mmkd.checkpoint_safety'])
    """
    rc, out = fresh(code, tmp_path, MMKD_MMCV_OPS='torchvision')
    assert rc == 0 and out.split('\n')[-2] == 'True torchvision True True', out


def test_hook_never_replaces_compiled_ops(tmp_path):
    """A compiled mmcv._ext (here a stand-in module in mmcv's package path) is imported as always;
    MMKD_MMCV_OPS=torchvision still asks for mmkd's, as with `import mmkd`."""
    fake = tmp_path / 'fake_mmcv'
    fake.mkdir()
    (fake / '_ext.py').write_text('COMPILED = True\n')
    code = f"""
        import mmcv, sys
        mmcv.__path__.append({str(fake)!r})
        import mmcv._ext
        print(type(sys.modules['mmcv._ext']).__name__, 'COMPILED' in vars(mmcv._ext))
    """
    rc, out = fresh(code, tmp_path)
    assert rc == 0 and out.split('\n')[-2] == 'module True', out
    rc, out = fresh(code, tmp_path, MMKD_MMCV_OPS='torchvision')
    assert rc == 0 and out.split('\n')[-2] == 'TorchvisionExt False', out


def test_mmengine_checkpoints_load_with_the_allow_list_only(tmp_path):
    """mmengine's own loader reads an mmengine checkpoint (message hub, numpy) under weights_only=True
    without mmkd imported; a checkpoint that asks for os.system is still refused."""
    from mmengine.logging import HistoryBuffer
    import numpy as np
    import torch
    good, bad = tmp_path / 'good.pth', tmp_path / 'bad.pth'
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save(dict(state_dict=dict(w=torch.ones(2)), message_hub=dict(log_scalars={'loss': buffer}),
                    meta=dict(seed=np.int64(3), mean=np.array([1.0, 2.0]))), good)

    class Payload:
        def __reduce__(self):
            return os.system, ('true',)

    torch.save(dict(state_dict=dict(w=torch.ones(2)), x=Payload()), bad)
    code = f"""
        from mmengine.runner.checkpoint import _load_checkpoint
        import sys
        ckpt = _load_checkpoint({str(good)!r}, map_location='cpu')
        print(ckpt['state_dict']['w'].tolist(), ckpt['message_hub']['log_scalars']['loss'].current(),
              int(ckpt['meta']['seed']), 'mmkd' in sys.modules)
        try:
            _load_checkpoint({str(bad)!r}, map_location='cpu')
            print('loaded')
        except Exception as e:
            print('refused', type(e).__name__)
    """
    rc, out = fresh(code, tmp_path)
    lines = out.splitlines()   # among mmengine's "Loads checkpoint ..." lines
    assert rc == 0 and '[1.0, 1.0] 1.5 3 False' in lines and 'refused UnpicklingError' in lines, out
    rc, out = fresh(code, tmp_path, MMKD_STARTUP_HOOK='0')
    assert rc != 0 and 'UnpicklingError' in out and 'HistoryBuffer' in out, out


@pytest.mark.slow
def test_a_wheel_install_has_the_hook_and_uninstall_removes_it(tmp_path):
    """What `pip install mmkd` from a wheel does: the .pth and mmkd_startup land in site-packages and
    start the hook; `pip uninstall mmkd` removes both and the next interpreter starts without it."""
    wheels = tmp_path / 'wheels'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                    '-w', str(wheels), REPO], check=True, capture_output=True, cwd=str(tmp_path))
    wheel, = wheels.glob('mmkd-*.whl')
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {'mmkd-startup.pth', 'mmkd_startup.py', 'mmkd/__init__.py'} <= names
        record = z.read(next(n for n in names if n.endswith('.dist-info/RECORD'))).decode()
        assert 'mmkd-startup.pth,' in record
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    pip = [sys.executable, '-m', 'pip', '--python', python, '-q', '--disable-pip-version-check']
    subprocess.run([*pip, 'install', '--no-deps', '--no-index', str(wheel)], check=True, capture_output=True)
    site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    probe = [python, '-c', 'import sys; print(any(type(f).__name__ == "StartupFinder" for f in sys.meta_path))']
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    assert osp.isfile(osp.join(site, 'mmkd-startup.pth'))
    assert subprocess.run(probe, capture_output=True, text=True, env=env, cwd=str(tmp_path)).stdout.strip() == 'True'
    subprocess.run([*pip, 'uninstall', '-y', 'mmkd'], check=True, capture_output=True)
    assert not osp.exists(osp.join(site, 'mmkd-startup.pth')) and not osp.exists(osp.join(site, 'mmkd_startup.py'))
    assert subprocess.run(probe, capture_output=True, text=True, env=env, cwd=str(tmp_path)).stdout.strip() == 'False'
