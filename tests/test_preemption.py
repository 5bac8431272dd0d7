"""A stopped or killed run loses no finished work: signals stop after a whole iteration with a
checkpoint of it, checkpoints are written atomically, and resume takes the newest whole one."""
import errno
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from mmkd.cli import choose_resume, continue_command
from mmkd.engine import STOPPED_EXIT_CODE, CheckpointWriteError, newest_intact_checkpoint
from mmkd.engine.checkpoint_files import checkpoint_problem, write_atomically

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(REPO, 'tests', 'fixtures')
TOY = osp.join(FIXTURES, 'toy_config.py')


def toy_config(work, *lines):
    """A config beside the work dir: the toy config, 8 iterations, no periodic checkpoint (the
    CheckpointHook still saves the last iteration), then ``lines``."""
    path = f'{work}.py'
    with open(path, 'w') as f:
        f.write('\n'.join([f'_base_ = [{TOY!r}]', 'train_cfg = dict(max_iters=8)',
                           'default_hooks = dict(checkpoint=dict(interval=100))', *lines]) + '\n')
    return path


def train(work, *lines, resume=False):
    env = dict(os.environ, PYTHONPATH=FIXTURES, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    args = [sys.executable, 'tools/train.py', toy_config(work, *lines), '--work-dir', str(work),
            *(['--resume'] if resume else [])]
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def signal_at(iteration, name='SIGTERM', **more):
    extra = ''.join(f', {k}={v!r}' for k, v in more.items())
    return f"custom_hooks = [dict(type='SignalHook', iteration={iteration}, signal='{name}'{extra})]"


def weights(path):
    return torch.load(path, weights_only=False, map_location='cpu')['state_dict']


def trained_iterations(log):
    return [int(n) for n in re.findall(r'Iter\(train\) \[\s*(\d+)/\d+\]', log)]


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    work = tmp_path_factory.mktemp('uninterrupted')
    rc, out = train(work)
    assert rc == 0, out
    return weights(work / 'iter_8.pth')


def test_sigterm_stops_after_the_iteration_and_resume_loses_nothing(tmp_path, uninterrupted):
    """SIGTERM during iteration 5: iteration 5 finishes, iter_5.pth is written and named by
    last_checkpoint, the run exits 75 naming the command that continues it; --resume trains 6-8 and
    ends with the weights of a run never stopped."""
    rc, out = train(tmp_path, signal_at(5))
    assert rc == STOPPED_EXIT_CODE, out
    assert trained_iterations(out) == [1, 2, 3, 4, 5]
    assert 'SIGTERM: stopped after iteration 5, whole; checkpoint' in out and 'iter_5.pth' in out
    assert f'Continue with: python tools/train.py {tmp_path}.py --work-dir {tmp_path} --resume' in out
    assert (tmp_path / 'last_checkpoint').read_text().strip() == str(tmp_path / 'iter_5.pth')
    assert checkpoint_problem(str(tmp_path / 'iter_5.pth')) is None and not (tmp_path / 'iter_4.pth').exists()
    assert torch.load(tmp_path / 'iter_5.pth', weights_only=False)['meta']['iter'] == 5

    rc, out = train(tmp_path, resume=True)
    assert rc == 0, out
    assert trained_iterations(out) == [6, 7, 8]
    resumed = weights(tmp_path / 'iter_8.pth')
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


@pytest.mark.parametrize('name', ['SIGUSR1', 'SIGINT'])
def test_slurm_warning_and_ctrl_c_stop_the_same_way(tmp_path, name):
    rc, out = train(tmp_path, signal_at(3, name))
    assert rc == STOPPED_EXIT_CODE, out
    assert f'{name}: stopped after iteration 3, whole' in out and 'KeyboardInterrupt' not in out
    assert checkpoint_problem(str(tmp_path / 'iter_3.pth')) is None


def test_a_second_signal_while_saving_changes_nothing(tmp_path):
    rc, out = train(tmp_path, signal_at(4, again_while_saving=True))
    assert rc == STOPPED_EXIT_CODE, out
    assert 'SIGTERM received again: already stopping' in out
    assert trained_iterations(out) == [1, 2, 3, 4] and checkpoint_problem(str(tmp_path / 'iter_4.pth')) is None


def test_no_second_checkpoint_when_the_hook_just_saved(tmp_path):
    rc, out = train(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))', signal_at(4))
    assert rc == STOPPED_EXIT_CODE, out
    assert out.count('Saving checkpoint at 4 iterations') == 1 and 'iter_4.pth' in out


def test_epoch_loop_stops_mid_epoch_and_resumes_there(tmp_path):
    """An epoch loop (4 iterations an epoch) stopped during iteration 6 saves epoch_2_iter_6.pth;
    --resume skips epoch 2's first 2 batches and ends with an uninterrupted run's weights."""
    epochs = ['train_cfg = dict(_delete_=True, by_epoch=True, max_epochs=2)',
              "train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True))",
              'default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1))']
    rc, out = train(tmp_path / 'whole', *epochs)
    assert rc == 0, out
    rc, out = train(tmp_path / 'stopped', *epochs, signal_at(6))
    assert rc == STOPPED_EXIT_CODE, out
    assert 'epoch_2_iter_6.pth' in out and checkpoint_problem(str(tmp_path / 'stopped' / 'epoch_2_iter_6.pth')) is None
    rc, out = train(tmp_path / 'stopped', *epochs, resume=True)
    assert rc == 0, out
    assert 'skipping the 2 batches already trained on' in out and trained_iterations(out) == [7, 8]
    whole, resumed = weights(tmp_path / 'whole' / 'epoch_2.pth'), weights(tmp_path / 'stopped' / 'epoch_2.pth')
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)


@pytest.mark.slow
def test_ranks_stop_together_and_torchrun_restarts_resume(tmp_path, uninterrupted):
    """2 processes (tools/dist_train.sh, gloo): SIGTERM to rank 1 alone during iteration 3 stops both
    ranks after iteration 3 with iter_3.pth. With torchrun's --max-restarts=1 the workers' exit makes
    torchrun relaunch them; the relaunch resumes from iter_3.pth by itself and finishes at 8."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29300 + os.getpid() % 200), PYTHONPATH=FIXTURES,
               OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    config = toy_config(tmp_path / 'ranks', signal_at(3, rank=1))
    command = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '2', '--work-dir', str(tmp_path / 'once')]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0   # torchrun's own code for workers that exited 75
    assert out.count('SIGTERM: stopped after iteration 3, whole') == 2, out   # both ranks
    assert 'bash tools/dist_train.sh' in out and '2 --work-dir' in out
    assert checkpoint_problem(str(tmp_path / 'once' / 'iter_3.pth')) is None

    command[-1] = str(tmp_path / "restarted")
    proc = subprocess.run(command, cwd=REPO, env=dict(env, TORCHRUN_ARGS='--max-restarts=1'), capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert 'torchrun restart 1: resuming from the work dir' in out and 'resumed' in out.lower()
    # The relaunch's SignalHook would fire again only at iteration 3, which it does not train.
    assert out.count('SIGTERM: stopped after iteration 3') == 2
    restarted = weights(tmp_path / 'restarted' / 'iter_8.pth')
    assert set(restarted) == set(uninterrupted)


# ------------------------------------------------------------------ atomic checkpoints
def test_killed_while_saving_leaves_no_broken_checkpoint(tmp_path):
    """SIGKILL between writing iter_4's bytes and renaming them: no iter_4.pth at all, last_checkpoint
    still names iter_2.pth, and --resume continues from it."""
    rc, out = train(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))',
                    "custom_hooks = [dict(type='SignalHook', fail_save='kill', fail_save_at=4)]")
    assert rc == -9, out
    assert not (tmp_path / 'iter_4.pth').exists()
    assert (tmp_path / 'last_checkpoint').read_text().strip() == str(tmp_path / 'iter_2.pth')
    rc, out = train(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))', resume=True)
    assert rc == 0 and trained_iterations(out)[0] == 3, out


def test_full_disk_names_the_path_and_bytes_and_keeps_the_previous_checkpoint(tmp_path):
    rc, out = train(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))',
                    "custom_hooks = [dict(type='SignalHook', fail_save='enospc', fail_save_at=4)]")
    assert rc != 0
    assert re.search(rf'no space left to write {re.escape(str(tmp_path / "iter_4.pth"))}: it needs [\d,]+ bytes', out)
    assert not (tmp_path / 'iter_4.pth').exists() and checkpoint_problem(str(tmp_path / 'iter_2.pth')) is None
    assert (tmp_path / 'last_checkpoint').read_text().strip() == str(tmp_path / 'iter_2.pth')
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]


def test_write_atomically_keeps_the_old_file_on_a_failed_write(tmp_path, monkeypatch):
    target = tmp_path / 'iter_2.pth'
    write_atomically(b'old', str(target))

    def full(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full)
    with pytest.raises(CheckpointWriteError, match=r'needs 3 bytes, [\d,]+ are free'):
        write_atomically(b'new', str(target))
    assert target.read_bytes() == b'old' and os.listdir(tmp_path) == ['iter_2.pth']


def broken_copies(work):
    """iter_2 whole, iter_4 truncated, iter_6 empty, last_checkpoint naming iter_6 (a kill between
    mmengine's plain write and the pointer update, as before atomic saves)."""
    if not (work / 'iter_2.pth').exists():
        torch.save(dict(state_dict={}, meta=dict(iter=2)), work / 'iter_2.pth')
    data = (work / 'iter_2.pth').read_bytes()
    (work / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    (work / 'iter_6.pth').write_bytes(b'')
    (work / 'last_checkpoint').write_text(str(work / 'iter_6.pth'))


def test_resume_names_a_broken_checkpoint_and_the_newest_whole_one(tmp_path):
    from mmengine.config import Config
    broken_copies(tmp_path)
    assert 'truncated or corrupt' in checkpoint_problem(str(tmp_path / 'iter_4.pth'))
    assert checkpoint_problem(str(tmp_path / 'iter_6.pth')) == 'empty (0 bytes)'
    cfg = Config(dict(work_dir=str(tmp_path)))
    with pytest.raises(ValueError, match=rf'--resume {re.escape(str(tmp_path / "iter_4.pth"))}: not a whole '
                                         rf'checkpoint .* newest whole checkpoint there is .*iter_2.pth'):
        choose_resume(cfg, str(tmp_path / 'iter_4.pth'))
    choose_resume(cfg, 'auto')
    assert cfg.resume and cfg.load_from == str(tmp_path / 'iter_2.pth')
    assert newest_intact_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')


def test_resume_without_a_path_warns_of_each_broken_file_it_skips(tmp_path):
    rc, out = train(tmp_path, 'train_cfg = dict(max_iters=2)')
    assert rc == 0, out
    broken_copies(tmp_path)
    rc, out = train(tmp_path, resume=True)
    assert rc == 0, out
    assert f'--resume: skipping {tmp_path / "iter_6.pth"}: empty (0 bytes)' in out
    assert f'skipping {tmp_path / "iter_4.pth"}: not a whole checkpoint' in out
    assert trained_iterations(out)[0] == 3


def test_continue_command_replaces_any_resume():
    args = ['tools/train.py', 'c.py', '--resume', 'w/iter_3.pth', '--seed', '1', '--launcher', 'pytorch']
    assert continue_command(args, 'none') == 'python tools/train.py c.py --seed 1 --resume'
    assert continue_command(args, 'pytorch').startswith('bash tools/dist_train.sh c.py ')
    assert continue_command(args, 'slurm').startswith('bash tools/slurm_train.sh ')
