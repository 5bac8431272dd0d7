"""A stopped or killed run loses no finished work: signals stop after a whole iteration with a
checkpoint of it, checkpoints are written atomically, and resume takes the newest whole one."""
import errno
import json
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
from test_distill import slurm_cluster  # noqa: F401 (fixture)

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


RUNS = iter(range(10 ** 6))


def train_here(work, *lines, resume=False):
    """The same config trained in this process through mmkd's runner set-up (tools/train.py's):
    the TrainingStopped it raised, or None."""
    from mmengine.config import Config

    from mmkd.cli import add_stop_safety, build_runner
    from mmkd.engine import TrainingStopped
    cfg = Config.fromfile(toy_config(work, *lines))
    cfg.work_dir, cfg.experiment_name, cfg.launcher = str(work), f'stop{next(RUNS)}', 'none'
    if resume:
        choose_resume(cfg, 'auto')
    add_stop_safety(cfg)
    runner = build_runner(cfg)
    try:
        runner.train()
    except TrainingStopped as stop:
        return stop
    return None


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

    # A kill under mmengine's plain writes (before atomic saves) could leave newer broken files:
    # --resume names each, skips it and takes iter_5.pth.
    (tmp_path / 'iter_6.pth').write_bytes((tmp_path / 'iter_5.pth').read_bytes()[:1000])
    (tmp_path / 'iter_7.pth').write_bytes(b'')
    rc, out = train(tmp_path, resume=True)
    assert rc == 0, out
    assert f'--resume: skipping {tmp_path / "iter_7.pth"}: empty (0 bytes)' in out
    assert f'skipping {tmp_path / "iter_6.pth"}: not a whole checkpoint' in out
    assert trained_iterations(out) == [6, 7, 8]
    resumed = weights(tmp_path / 'iter_8.pth')
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


def test_forked_workers_keep_the_default_meaning_of_signals():
    """A data loader or multiprocessing.Pool worker forked during training inherits the handler:
    there SIGTERM still ends the process (else a pool's terminate() waits on it for ever)."""
    import multiprocessing
    import signal
    import time
    from types import SimpleNamespace

    from mmkd.engine import GracefulStopHook
    hook = GracefulStopHook()
    runner = SimpleNamespace()
    hook.before_train(runner)
    try:
        worker = multiprocessing.get_context('fork').Process(target=time.sleep, args=(30,))
        worker.start()
        time.sleep(0.2)
        worker.terminate()   # SIGTERM
        worker.join(10)
        assert worker.exitcode == -signal.SIGTERM and hook.received is None
    finally:
        hook.after_run(runner)


@pytest.mark.parametrize('name', ['SIGUSR1', 'SIGINT'])
def test_slurm_warning_and_ctrl_c_stop_the_same_way(tmp_path, name):
    import signal
    before = signal.getsignal(getattr(signal, name))
    stop = train_here(tmp_path, signal_at(3, name))
    assert (stop.signal_name, stop.iteration, stop.checkpoint) == (name, 3, str(tmp_path / 'iter_3.pth'))
    assert checkpoint_problem(stop.checkpoint) is None
    assert signal.getsignal(getattr(signal, name)) is before   # the handler is put back


def test_a_second_signal_while_saving_changes_nothing(tmp_path, capfd):
    stop = train_here(tmp_path, signal_at(4, again_while_saving=True))
    assert stop.iteration == 4 and checkpoint_problem(stop.checkpoint) is None
    assert 'SIGTERM received again: already stopping' in capfd.readouterr().err


def test_no_second_checkpoint_when_the_hook_just_saved(tmp_path):
    saves = []
    from mmengine.runner import Runner
    save = Runner.save_checkpoint

    def counting(self, out_dir, filename, *args, **kwargs):
        saves.append(filename)
        return save(self, out_dir, filename, *args, **kwargs)

    Runner.save_checkpoint = counting
    try:
        stop = train_here(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))', signal_at(4))
    finally:
        Runner.save_checkpoint = save
    assert stop.checkpoint == str(tmp_path / 'iter_4.pth') and saves == ['iter_2.pth', 'iter_4.pth']


def test_epoch_loop_stops_mid_epoch_and_resumes_there(tmp_path):
    """An epoch loop (4 iterations an epoch) stopped during iteration 6 saves epoch_2_iter_6.pth;
    --resume skips epoch 2's first 2 batches and ends with an uninterrupted run's weights."""
    epochs = ['train_cfg = dict(_delete_=True, by_epoch=True, max_epochs=2)',
              "train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True))",
              'default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1))']
    assert train_here(tmp_path / 'whole', *epochs) is None
    stop = train_here(tmp_path / 'stopped', *epochs, signal_at(6))
    assert stop.checkpoint == str(tmp_path / 'stopped' / 'epoch_2_iter_6.pth')
    meta = torch.load(stop.checkpoint, weights_only=False)['meta']
    assert (meta['epoch'], meta['iter']) == (1, 6)   # in epoch index 1 (the second), after iteration 6
    rc, out = train(tmp_path / 'stopped', *epochs, resume=True)
    assert rc == 0, out
    assert 'skipping the 2 batches already trained on' in out and trained_iterations(out) == [7, 8]
    whole, resumed = weights(tmp_path / 'whole' / 'epoch_2.pth'), weights(tmp_path / 'stopped' / 'epoch_2.pth')
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)


@pytest.mark.slow
def test_ranks_stop_together(tmp_path):
    """2 processes (tools/dist_train.sh, gloo): SIGTERM to rank 1 alone during iteration 3 stops both
    ranks after iteration 3 with iter_3.pth (a relaunch resumes: the SIGKILL test below)."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29300 + os.getpid() % 200), PYTHONPATH=FIXTURES,
               OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    (tmp_path / 'once').mkdir()
    config = toy_config(tmp_path / 'ranks', "custom_hooks = [dict(type='SignalHook', iteration=3, rank=1), "
                        f"dict(type='RecordLossesHook', out_dir={str(tmp_path / 'once')!r})]")
    command = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '2', '--work-dir', str(tmp_path / 'once')]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0   # torchrun's own code for workers that exited 75 (no --max-restarts)
    # Both ranks stopped with 75 (torchrun's summary); rank 0 logs where (mmengine keeps the other
    # ranks' console to errors).
    assert out.count('exitcode  : 75') == 2, out
    for rank in (0, 1):   # each rank's last trained iteration (0-based) is the third
        records = [json.loads(line) for line in open(tmp_path / 'once' / f'losses_rank{rank}.jsonl')]
        assert [r['iter'] for r in records] == [0, 1, 2], rank
    assert out.count('SIGTERM: stopped after iteration 3, whole') == 1, out
    assert f'Continue with: bash {REPO}/tools/dist_train.sh {config} 2 --work-dir {tmp_path / "once"} --resume' in out
    assert checkpoint_problem(str(tmp_path / 'once' / 'iter_3.pth')) is None


# ------------------------------------------------------------------ atomic checkpoints
def test_killed_while_saving_leaves_no_broken_checkpoint(tmp_path):
    """SIGKILL between writing iter_4's bytes and renaming them: no iter_4.pth at all, last_checkpoint
    still names iter_2.pth, and --resume continues from it."""
    rc, out = train(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))',
                    "custom_hooks = [dict(type='SignalHook', fail_save='kill', fail_save_at=4)]")
    assert rc == -9, out
    assert not (tmp_path / 'iter_4.pth').exists()
    assert (tmp_path / 'last_checkpoint').read_text().strip() == str(tmp_path / 'iter_2.pth')
    assert train_here(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))', resume=True) is None
    assert torch.load(tmp_path / 'iter_8.pth', weights_only=False)['meta']['iter'] == 8


def test_full_disk_names_the_path_and_bytes_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """A full disk at the checkpoint of iteration 4 (injected: fsync fails from the save after
    iteration 2's two calls, file and folder)."""
    calls, fsync = [], os.fsync

    def filling(fd):
        calls.append(fd)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, 'No space left on device')
        fsync(fd)

    monkeypatch.setattr(os, 'fsync', filling)
    with pytest.raises(CheckpointWriteError, match=rf'no space left to write {re.escape(str(tmp_path / "iter_4.pth"))}: '
                                                   r'it needs [\d,]+ bytes, [\d,]+ are free'):
        train_here(tmp_path, 'default_hooks = dict(checkpoint=dict(interval=2))')
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


def test_continue_command_replaces_any_resume():
    args = ['tools/train.py', 'c.py', '--resume', 'w/iter_3.pth', '--seed', '1', '--launcher', 'pytorch']
    assert continue_command(args, 'none') == 'python tools/train.py c.py --seed 1 --resume'
    assert continue_command(args, 'pytorch').startswith('bash tools/dist_train.sh c.py ')
    assert continue_command(args, 'slurm').startswith('bash tools/slurm_train.sh ')


# ------------------------------------------------------------------ Slurm
@pytest.mark.slow
def test_slurm_job_signalled_mid_run_requeues_and_finishes(tmp_path, slurm_cluster):
    """The README's sbatch form on a real single-node cluster: SIGUSR1 (Slurm's time-limit warning,
    here sent with scancel) stops the task after its iteration with a checkpoint; tools/train.py
    requeues the job (REQUEUE=1), which starts again, resumes from the work dir by itself and
    trains the remaining iterations: each of 1..12 exactly once over both runs."""
    import time

    from slurm_cluster import PARTITION, free_port
    work = tmp_path / 'work'
    config = toy_config(tmp_path / 'job', 'train_cfg = dict(max_iters=12)',
                        "custom_hooks = [dict(type='PaceHook', seconds=0.4)]")
    env = slurm_cluster.env(PYTHON=sys.executable, MASTER_PORT=str(free_port()), PYTHONPATH=FIXTURES,
                            OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    log = tmp_path / 'job.log'
    submit = subprocess.run(
        ['sbatch', '--parsable', '--requeue', '--open-mode=append', '-p', PARTITION, '--ntasks=1', '--cpus-per-task=1',
         '-J', 'mmkd-requeue', '-o', str(log), '--wrap',
         f'REQUEUE=1 GPUS=1 GPUS_PER_NODE=1 CPUS_PER_TASK=1 GRES= bash {REPO}/tools/slurm_train.sh {PARTITION} '
         f'mmkd-requeue {config} {work} --resume'], env=env, cwd=str(tmp_path), capture_output=True, text=True)
    assert submit.returncode == 0, submit.stderr + slurm_cluster.log()
    job = submit.stdout.strip().split(';')[0]

    def state():
        shown = subprocess.run(['scontrol', 'show', 'job', job], env=env, capture_output=True, text=True).stdout
        return re.search(r'JobState=(\w+)', shown)[1] if 'JobState=' in shown else 'GONE'

    deadline = time.time() + 240
    while 'Iter(train) [ 3/12]' not in (log.read_text() if log.exists() else ''):
        assert time.time() < deadline and state() in ('PENDING', 'RUNNING', 'CONFIGURING'), slurm_cluster.log()
        time.sleep(0.5)
    subprocess.run(['scancel', '--signal=USR1', job], env=env, check=True)
    # Slurm holds a requeued job back (its BeginTime, about 2-3 minutes here); let it start after 5 s.
    # Not at once: the requeue revoked the job's credential at a time stamp in seconds, and slurmd
    # refuses ("Job 1 already killed, do not launch batch job") a launch whose new credential bears
    # the same second (seen in a CI run).
    while 'requeued' not in log.read_text() or state() != 'PENDING':
        assert time.time() < deadline and state() not in ('FAILED', 'CANCELLED', 'COMPLETED'), \
            (state(), log.read_text()[-3000:], slurm_cluster.log())
        time.sleep(0.5)
    time.sleep(5)
    subprocess.run(['scontrol', 'update', f'JobId={job}', 'StartTime=now'], env=env, check=True)
    while state() != 'COMPLETED':
        assert time.time() < deadline and state() not in ('FAILED', 'CANCELLED', 'TIMEOUT', 'GONE'), \
            (state(), log.read_text()[-3000:], slurm_cluster.log())
        time.sleep(1)
    out = log.read_text()
    stopped = int(re.search(r'SIGUSR1: stopped after iteration (\d+), whole', out)[1])
    assert f'Slurm job {job} requeued' in out and f'Slurm requeue 1 of job {job}: resuming' in out
    assert trained_iterations(out) == list(range(1, 13)) and 3 <= stopped < 12
    assert checkpoint_problem(str(work / f'iter_{stopped}.pth')) is None and (work / 'iter_12.pth').is_file()
