"""What stopping at a signal costs: the per-iteration agreement of the ranks, and the time from the
signal to the process's exit with a checkpoint written.

    python tools/benchmark_stop.py [--procs 2] [--steps 2000] [--out docs/benchmarks_stop.md]

1. agreement: ``--procs`` CPU processes (gloo) all-reduce GracefulStopHook's one-element flag
   ``--steps`` times; the median and 90th percentile of one all-reduce (what every iteration of a
   multi-process run pays; under NCCL the flag travels on a gloo group, so this is the cost there
   too, with no device synchronisation);
2. signal to exit: tools/train.py on the test suite's toy model with a distillation-free config,
   SIGTERM sent after its 3rd logged iteration; seconds from the signal to the exit (the iteration
   in progress, the checkpoint, the teardown), three times.
"""
import argparse
import os
import os.path as osp
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(REPO, 'tests', 'fixtures')


def agree(rank: int, procs: int, steps: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=procs)
    flag = torch.zeros(1, dtype=torch.int32)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        times.append(time.perf_counter() - start)
    if rank == 0:
        with open(out, 'w') as f:
            f.write('\n'.join(map(str, times)))
    dist.destroy_process_group()


def agreement_us(procs: int, steps: int) -> tuple:
    with tempfile.TemporaryDirectory() as folder:
        out = osp.join(folder, 'times.txt')
        mp.spawn(agree, args=(procs, steps, 29400 + os.getpid() % 300, out), nprocs=procs)
        times = sorted(float(t) * 1e6 for t in open(out).read().split())
    return statistics.median(times), times[int(0.9 * len(times))]


def signal_to_exit_s() -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = osp.join(folder, 'toy.py')
        with open(config, 'w') as f:
            f.write(f"_base_ = [{osp.join(FIXTURES, 'toy_config.py')!r}]\ntrain_cfg = dict(max_iters=100000)\n"
                    "custom_hooks = [dict(type='PaceHook', seconds=0.05)]\n")
        env = dict(os.environ, PYTHONPATH=FIXTURES, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
        proc = subprocess.Popen([sys.executable, '-u', 'tools/train.py', config, '--work-dir', folder], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            if 'Iter(train) [     3/' in line or 'Iter(train) [3/' in line:
                break
        start = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        code = proc.wait()
        seconds = time.perf_counter() - start
        if code != 75 or 'stopped after iteration' not in rest:
            raise RuntimeError(f'tools/train.py did not stop as expected (exit {code}):\n{rest[-2000:]}')
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--procs', type=int, default=2)
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--out', help='also write the table to this markdown file')
    args = parser.parse_args()
    median, p90 = agreement_us(args.procs, args.steps)
    exits = [signal_to_exit_s() for _ in range(3)]
    table = '\n'.join([
        f'CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}.', '',
        '| what | measured |', '|---|---:|',
        f'| agreement, one all-reduce of the stop flag ({args.procs} processes, gloo, {args.steps} steps) | '
        f'median {median:.0f} µs, 90th percentile {p90:.0f} µs |',
        f'| SIGTERM to exit, toy run (finish the iteration, checkpoint, teardown), 3 runs | '
        f'{", ".join(f"{s:.2f}" for s in exits)} s |', ''])
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)


if __name__ == '__main__':
    main()
