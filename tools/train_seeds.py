"""Train one config over several seeds: one tools/train.py run per seed, in <work dir>_seed<N>.

    python tools/train_seeds.py CONFIG --seeds 0 1 2 [train.py options]          # one after another
    python tools/train_seeds.py CONFIG --seeds 0 1 2 --print [train.py options]  # the commands, for a scheduler

A seed whose run has its final checkpoint is skipped; any other starts, or continues from its last
checkpoint (--resume). With --print, each seed's command is printed instead, one per line, to submit
as separate jobs (e.g. `... --print | while read -r cmd; do sbatch --wrap "$cmd"; done`); finished
seeds are left out there too. tools/compare_results.py then groups the work dirs by method.
"""
import argparse
import os.path as osp
import shlex
import signal
import subprocess
import sys

from mmkd.cli import apply_seed, final_checkpoint, load_config, train_parser
from mmkd.engine import STOPPED_EXIT_CODE

TRAIN = osp.join(osp.dirname(osp.abspath(__file__)), 'train.py')


def run_stoppable(command) -> int:
    """Run one seed's tools/train.py. SIGINT, SIGTERM and SIGUSR1 sent to this process are passed on
    to it, which then stops after its iteration with a checkpoint (exit 75), instead of Python's
    default for a child, killing it mid-save."""
    child = subprocess.Popen(command)
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    previous = {signum: signal.signal(signum, lambda signum, frame: child.send_signal(signum)) for signum in handled}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', required=True)
    parser.add_argument('--print', action='store_true', help="print each unfinished seed's command instead of running it")
    args, train_args = parser.parse_known_args()
    if '--seed' in train_args or '--resume' in train_args:
        parser.error('--seed and --resume are set per run by train_seeds.py; give --seeds.')
    failed = []
    for seed in args.seeds:
        options = train_parser().parse_args([*train_args, '--seed', str(seed)])
        cfg = load_config(options)
        apply_seed(cfg, seed)
        if osp.isfile(final_checkpoint(cfg)):
            print(f'seed {seed}: finished ({final_checkpoint(cfg)}), skipped', file=sys.stderr)
            continue
        command = [sys.executable, TRAIN, *train_args, '--seed', str(seed), '--resume']
        if args.print:
            print(shlex.join(command))
            continue
        print(f'seed {seed}: {shlex.join(command)}', file=sys.stderr, flush=True)
        code = run_stoppable(command)
        if code == STOPPED_EXIT_CODE:
            print(f'seed {seed}: stopped with a checkpoint; rerun the same command to continue it and the seeds after '
                  'it.', file=sys.stderr)
            return STOPPED_EXIT_CODE
        if code != 0:
            failed.append(seed)
    if failed:
        print(f'seeds {failed} failed: see their work dirs; rerun the same command to continue them.', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
