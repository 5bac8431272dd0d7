"""The GPU path's CPU-checkable parts: the offline kit and tools/gpu_smoke.sh at tiny sizes."""
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run(*cmd, **kwargs):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, **kwargs)


@pytest.mark.slow
def test_gpu_kit_has_every_wheel_for_both_pythons_within_budget(tmp_path):
    kit = tmp_path / 'gpu-kit'
    proc = run('bash', 'tools/make_gpu_kit.sh', '--python', sys.executable, '--out', str(kit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = os.listdir(kit / 'wheels')
    for name in ('mmengine-', 'mmdet-', 'mmcv_lite-', 'addict-', 'yapf-', 'termcolor-', 'terminaltables-',
                 'platformdirs-', 'setuptools-', 'mmkd-'):
        assert any(w.startswith(name) for w in wheels), (name, wheels)
    for name in ('pycocotools-', 'shapely-'):
        for tag in ('cp311', 'cp312'):
            assert any(w.startswith(name) and tag in w for w in wheels), (name, tag, wheels)
    assert not any(w.startswith(('torch-', 'torchvision-', 'opencv', 'numpy-', 'mmcv-2')) for w in wheels)
    size = sum(osp.getsize(kit / 'wheels' / w) for w in wheels)
    assert size < 60 * 2**20
    with zipfile.ZipFile(next(kit / 'wheels' / w for w in wheels if w.startswith('mmkd-'))) as wheel:
        assert 'mmkd/ops/nms.py' in wheel.namelist()
    requirements = (kit / 'requirements.txt').read_text().split()
    assert 'mmcv-lite==2.1.0' in requirements and 'mmdet==3.3.0' in requirements
    assert os.access(kit / 'install.sh', os.R_OK)


@pytest.mark.slow
def test_gpu_smoke_script_runs_end_to_end_on_cpu(tmp_path):
    logs = tmp_path / 'smoke'
    proc = run('bash', 'tools/gpu_smoke.sh', '--cpu', '--no-install', '--python', sys.executable,
               '--logs', str(logs), timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (logs / 'summary.txt').read_text()
    for step in ('ops', 'data', 'voc', 'imagenet', 'bench'):
        assert f'[gpu-smoke] {step}: ok' in summary
    assert 'mmcv ops check: OK' in (logs / 'ops.log').read_text()
    voc = (logs / 'voc.log').read_text()
    assert 'loss_nst_c4' in voc and 'loss_nst_c5' in voc      # the hook's terms were trained
    assert 'pascal_voc/mAP' in voc or 'mAP' in voc             # tools/test.py evaluated the student
    for run_dir in ('voc_teacher', 'voc_student', 'imagenet_teacher', 'imagenet_kd_nst'):
        assert (logs / run_dir / 'iter_2.pth').is_file(), run_dir
    assert 'loss_kd' in (logs / 'imagenet.log').read_text()
    # A second run restarts nothing that finished.
    again = run('bash', 'tools/gpu_smoke.sh', '--cpu', '--no-install', '--python', sys.executable,
                '--logs', str(logs), '--steps', 'data voc')
    assert again.returncode == 0 and again.stdout.count('done before') == 2, again.stdout
