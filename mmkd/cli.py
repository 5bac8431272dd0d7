"""What tools/train.py and tools/test.py share: config arguments, loading, and building the runner."""
import argparse
import ast
import contextlib
import gc
import logging
import os
import os.path as osp
import re
import shlex
from typing import Iterator, Optional, Sequence

import torch.distributed as dist

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint

from .checkpoint_safety import allow_mmengine_checkpoints
from .cpu_distributed import prepare_cpu_distributed
from .engine.checkpoint_files import (ATOMIC_BACKEND, checkpoint_problem, checkpoints_newest_first,
                                     newest_intact_checkpoint)
from .ops import mmcv_ops_backend
from .registry import RUNNERS

OPS_BACKENDS = dict(compiled="mmcv's compiled kernels", torchvision="mmkd.ops: torchvision's kernels behind mmcv._ext",
                    missing='none installed yet')


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='the dir for logs, checkpoints and metrics')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs like model.backbone.depth=18')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torchrun passes the rank through LOCAL_RANK; torch.distributed.launch used --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def train_parser() -> argparse.ArgumentParser:
    """tools/train.py's arguments (tools/train_seeds.py reads the same)."""
    parser = argparse.ArgumentParser(description='Train a model with mmkd')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size (auto_scale_lr)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, from the latest one in the work dir')
    parser.add_argument('--seed', type=int,
                        help="the run's seed (randomness.seed); the work dir becomes <work dir>_seed<N>")
    add_config_arguments(parser)
    return parser


def load_config(args: argparse.Namespace) -> Config:
    """The config with --cfg-options applied, the launcher set and a work dir chosen
    (--work-dir, else the config's, else ./work_dirs/<config name>)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config}: no such file.')
    try:
        cfg = Config.fromfile(args.config)
    except SyntaxError as error:
        # mmengine reports a syntax error in a _base_ file without naming the file.
        culprit = _file_with_syntax_error(osp.abspath(args.config))
        if culprit is None or culprit == osp.abspath(args.config):
            raise
        raise SyntaxError(f'config {args.config}: its _base_ file {culprit} has a syntax error: '
                          f'line {error.lineno}: {error.msg}') from error
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def apply_seed(cfg: Config, seed: int) -> None:
    """``--seed N``: the run's seed (mmengine's ``randomness.seed``, which seeds Python, numpy, torch
    and the data loader workers) and its work dir ``<work dir>_seed<N>``, so runs of one config
    over several seeds sit side by side (tools/compare_results.py groups them by method)."""
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    cfg.work_dir = f'{osp.normpath(cfg.work_dir)}_seed{seed}'


def final_checkpoint(cfg: Config) -> str:
    """The checkpoint a finished run of ``cfg`` ends with: iter_<max_iters>.pth or epoch_<max_epochs>.pth."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_iters' in train_cfg:
        return osp.join(cfg.work_dir, f'iter_{train_cfg["max_iters"]}.pth')
    if 'max_epochs' in train_cfg:
        return osp.join(cfg.work_dir, f'epoch_{train_cfg["max_epochs"]}.pth')
    raise ValueError(f'train_cfg {dict(train_cfg)} has neither max_iters nor max_epochs.')


def _file_with_syntax_error(path: str, seen: Optional[set] = None) -> Optional[str]:
    """The first file in ``path``'s ``_base_`` tree (local files only) that does not parse."""
    seen = set() if seen is None else seen
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    try:
        tree = ast.parse(open(path, encoding='utf-8').read(), filename=path)
    except SyntaxError:
        return path
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_' for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                continue
            for base in [bases] if isinstance(bases, str) else bases:
                if '::' not in base:
                    found = _file_with_syntax_error(osp.normpath(osp.join(osp.dirname(path), base)), seen)
                    if found:
                        return found
    return None


def add_nonfinite_guard(cfg: Config) -> None:
    """Every training run stops at the first non-finite loss unless its config says otherwise
    (top-level ``nonfinite_guard``: a dict of ``mmkd.NonFiniteGuardHook`` options, or None)."""
    guard = cfg.get('nonfinite_guard', {})
    hooks = cfg.get('custom_hooks') or []
    if guard is None or any(str(h.get('type', '')).endswith('NonFiniteGuardHook') for h in hooks):
        return
    cfg.custom_hooks = [*hooks, dict(type='mmkd.NonFiniteGuardHook', **guard)]


def add_stop_safety(cfg: Config) -> None:
    """Every training run stops at SIGTERM / SIGUSR1 / SIGINT after a whole iteration with a checkpoint
    of it (``mmkd.GracefulStopHook``, unless the config lists its own or sets ``graceful_stop=None``),
    writes its checkpoints atomically (``mmkd_atomic_local`` backend for a local ``out_dir``), and an
    epoch loop resumes mid-epoch (``mmkd.ResumableEpochBasedTrainLoop``)."""
    hooks = cfg.get('custom_hooks') or []
    stop = cfg.get('graceful_stop', {})
    if stop is not None and not any(str(h.get('type', '')).endswith('GracefulStopHook') for h in hooks):
        cfg.custom_hooks = [*hooks, dict(type='mmkd.GracefulStopHook', **stop)]
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None and not checkpoint.get('backend_args') and '://' not in str(checkpoint.get('out_dir', '')):
        checkpoint.backend_args = dict(backend=ATOMIC_BACKEND)
    train_cfg = cfg.get('train_cfg')
    if train_cfg is not None and (train_cfg.get('by_epoch') is True or
                                  str(train_cfg.get('type', '')).split('.')[-1] == 'EpochBasedTrainLoop'):
        train_cfg.pop('by_epoch', None)
        train_cfg.type = 'mmkd.ResumableEpochBasedTrainLoop'


def restarted_by_launcher() -> Optional[str]:
    """Why this process is a relaunch of a stopped run (torchrun's --max-restarts, a requeued Slurm
    job), or None: such a relaunch resumes from its work dir unless told otherwise."""
    if int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') or 0) > 0:
        return f'torchrun restart {os.environ["TORCHELASTIC_RESTART_COUNT"]}'
    if int(os.environ.get('SLURM_RESTART_COUNT', '0') or 0) > 0:
        return f'Slurm requeue {os.environ["SLURM_RESTART_COUNT"]} of job {os.environ.get("SLURM_JOB_ID", "?")}'
    return None


def choose_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume [CKPT]``: set ``cfg.resume``/``cfg.load_from``, refusing a broken checkpoint by name.

    ``CKPT`` truncated or corrupt: an error naming it and the newest whole one. No path ('auto'): the
    newest whole checkpoint of the work dir; a broken newer one is skipped with a warning naming it.
    A relaunch by torchrun or a Slurm requeue resumes as with 'auto' unless ``--resume`` says otherwise."""
    relaunch = restarted_by_launcher()
    if relaunch and resume in (None, 'auto'):
        print_log(f'{relaunch}: resuming from the work dir{" (as --resume)" if resume is None else ""}.',
                  logger='current')
        resume = 'auto'
    if resume is None:
        return
    if resume != 'auto':
        problem = checkpoint_problem(resume)
        if problem is not None:
            work_dir = osp.dirname(osp.abspath(resume))
            intact = newest_intact_checkpoint(work_dir, exclude=resume)
            raise ValueError(f'--resume {resume}: {problem}. '
                             + (f'The newest whole checkpoint there is {intact}: --resume {intact}, or --resume '
                                'with no path to take it.' if intact else 'No whole checkpoint in that folder.'))
        cfg.resume, cfg.load_from = True, resume
        return
    newest = checkpoints_newest_first(cfg.work_dir) if osp.isdir(cfg.work_dir) else []
    intact = newest_intact_checkpoint(cfg.work_dir) if newest else None
    for broken in newest[:newest.index(intact) if intact in newest else len(newest)]:
        print_log(f'--resume: skipping {broken}: {checkpoint_problem(broken)}.', logger='current',
                  level=logging.WARNING)
    if intact is None:
        # mmengine would log "Auto resumed from the latest checkpoint None." when there is none.
        print_log(f'--resume: no checkpoint in {cfg.work_dir} yet: training from the start.', logger='current')
    cfg.resume, cfg.load_from = intact is not None, intact


def continue_command(argv: Sequence[str], launcher: str) -> str:
    """The command that continues a stopped run: its own launch, with ``--resume`` (no path) in place
    of any ``--resume [CKPT]``. ``argv``: tools/train.py's ``sys.argv``."""
    args, index = [], 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == '--resume':
            if index < len(argv) and not argv[index].startswith('-'):
                index += 1   # its checkpoint path
            continue
        if arg.startswith('--resume=') or (arg == '--launcher' and index < len(argv)):
            index += arg == '--launcher'
            continue
        args.append(arg)
    script, config, options = args[0], args[1], ' '.join(shlex.quote(a) for a in args[2:])
    tools = osp.dirname(script) or '.'
    if launcher == 'pytorch':
        nproc = os.environ.get('LOCAL_WORLD_SIZE', 'N')
        return f'bash {tools}/dist_train.sh {config} {nproc} {options} --resume'.replace('  ', ' ') + ' (on every node)'
    if launcher == 'slurm':
        partition, job = os.environ.get('SLURM_JOB_PARTITION', 'PARTITION'), os.environ.get('SLURM_JOB_NAME', 'JOB')
        return f'bash {tools}/slurm_train.sh {partition} {job} {config} {options} --resume'.replace('  ', ' ')
    return f'python {script} {config} {options} --resume'.replace('  ', ' ')


# Upstream types whose errors do not name the file (OpenCV's decode error, ElementTree's line and
# column), and mmkd's subclasses that do (mmkd/datasets/loading.py).
FILE_NAMING_TYPES = {'LoadImageFromFile': 'mmkd.LoadImageFromFile', 'VOCDataset': 'mmkd.VOCDataset'}


def dataloader_nodes(cfg: Config) -> Iterator[dict]:
    """Every dict inside the config's train/val/test dataloaders (datasets, wrapped datasets,
    pipelines, their transforms), to edit in place."""
    def visit(node) -> Iterator[dict]:
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                yield from visit(value)

    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is not None:
            yield from visit(cfg[key])


def name_bad_data_files(cfg: Config) -> None:
    """In every dataloader's datasets and pipelines, mmcv's ``LoadImageFromFile`` and mmdet's
    ``VOCDataset`` become mmkd's subclasses, which name a bad image or annotation file: so a config
    that keeps mmdet's scope and types (``custom_imports=['mmkd']``) run through mmkd's tools gets the
    same messages as mmkd's own configs. Only the error messages differ: the subclasses load the same."""
    scope = cfg.get('default_scope') or 'mmdet'
    for node in dataloader_nodes(cfg):
        kind = node.get('type')
        if not isinstance(kind, str):
            continue
        prefix, _, name = kind.rpartition('.')
        upstream = prefix in ('mmdet', 'mmcv', 'mmengine') or (not prefix and scope != 'mmkd')
        if name in FILE_NAMING_TYPES and upstream and '_scope_' not in node:
            node['type'] = FILE_NAMING_TYPES[name]


def add_distill_diagnostics(cfg: Config) -> None:
    """A Distiller run gets ``mmkd.DistillDiagnosticsHook`` (its teacher check and gradient-share log;
    the Distiller's ``teacher_check``/``grad_share`` options); the hook front door does both itself."""
    hooks = cfg.get('custom_hooks') or []
    model_type = str(cfg.get('model', {}).get('type', ''))
    if model_type.split('.')[-1] != 'Distiller' or any(
            str(h.get('type', '')).endswith('DistillDiagnosticsHook') for h in hooks):
        return
    cfg.custom_hooks = [*hooks, dict(type='mmkd.DistillDiagnosticsHook')]


def compile_distiller_forwards(cfg: Config) -> None:
    """A config's ``compile`` with an ``mmkd.Distiller`` model compiles the student's and the
    teacher's forwards (``Distiller(compile=...)``) instead of mmengine's whole train step, whose
    distillation engine would recompile it at every iteration."""
    if not cfg.get('compile') or not str(cfg.model.get('type', '')).endswith('Distiller'):
        return
    cfg.model.compile = cfg.compile
    cfg.compile = None
    print_log('compile: the Distiller compiles its student and teacher forwards (the distillation engine '
              'between them stays eager); the first iterations are slow.', logger='current')


def build_runner(cfg: Config) -> Runner:
    """The runner of ``cfg``, with torch's weights_only loader able to read mmengine checkpoints
    (``--resume``, ``load_from``)."""
    allow_mmengine_checkpoints()
    name_bad_data_files(cfg)
    prepare_cpu_distributed(cfg)
    compile_distiller_forwards(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    # Which mmcv ops ran (compiled kernels or mmkd's torchvision layer) belongs with the run's numbers.
    backend = mmcv_ops_backend()
    print_log(f'mmcv ops: {backend} ({OPS_BACKENDS.get(backend, backend)})', logger='current')
    return runner


# What torch's backends say when the other end of a collective is gone (a node lost, a process killed
# by the OOM killer) or never answers: gloo's transport, NCCL's watchdog, c10d's store.
PEER_LOST = re.compile(r'closed by peer|reset by peer|Broken pipe|[Tt]imed out|[Tt]imeout|'
                       r'NCCL communicator was aborted|DistNetworkError|DistStoreError')


@contextlib.contextmanager
def peer_loss_explained(runner: Runner) -> Iterator[None]:
    """Training in several processes: when a collective fails because another process of the run
    stopped, torch raises deep in DDP or a loss's all-reduce; log, before that traceback, what it
    means and how to continue (relaunch every node with --resume from the last checkpoint)."""
    try:
        yield
    except Exception as error:
        if not (dist.is_available() and dist.is_initialized()) or not PEER_LOST.search(str(error)):
            raise
        latest = find_latest_checkpoint(runner.work_dir)
        cause = str(error).strip().splitlines()[0][:300]
        print_log(f'rank {dist.get_rank()} of {dist.get_world_size()}: another process of this run stopped or '
                  f'stopped answering, so a collective failed ({type(error).__name__}: {cause}). Check the '
                  "other nodes' logs for the first failure. "
                  + (f'The last checkpoint is {latest}: relaunch every node with the same command and '
                     '--resume to continue from it.' if latest else
                     'No checkpoint was saved yet: relaunch every node with the same command.'),
                  logger='current', level=logging.ERROR)
        raise


def teardown_distributed() -> None:
    """End the process group before the interpreter exits (call after dropping the runner, whose DDP
    model holds the group). Otherwise a gloo worker thread can still be freeing a finished collective
    at shutdown, when it can no longer take the GIL, and the rank aborts (SIGABRT) after a
    successful run. The barrier lets every rank finish its last collective first."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
