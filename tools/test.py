"""Evaluate a checkpoint on a config's test set, as mmdet's tools/test.py does.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--cfg-options ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [...]
"""
import argparse
import os.path as osp

import mmkd  # noqa: F401  (registers mmkd's modules)
from mmkd.cli import add_config_arguments, build_runner, load_config, teardown_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a model with mmkd')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump raw predictions to this pickle file')
    add_config_arguments(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint}: no such file.')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {args.out}: the output file must be a .pkl or .pickle file.')
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, dict(type='DumpResults', out_file_path=args.out)]
    runner = build_runner(cfg)
    runner.test()
    del runner
    teardown_distributed()


if __name__ == '__main__':
    main()
