#!/usr/bin/env bash
# srun with OpenMMLab's Slurm interface; used by slurm_train.sh and slurm_test.sh.
#   bash tools/slurm_run.sh PARTITION JOB_NAME SCRIPT [args]
# Environment: GPUS (tasks in all, default 8), GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 5),
# SRUN_ARGS (more srun options), GRES (default gpu:$GPUS_PER_NODE; GRES= on nodes without GPUs, where
# the tasks train on CPUs over gloo), PYTHON (default: this checkout's .venv, else python3).
# Each task is one process; mmkd's tools read SLURM_PROCID / SLURM_NTASKS / SLURM_NODELIST
# (--launcher slurm) and rendezvous on the first node at MASTER_PORT (default 29500).
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
shift 2
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:$GPUS_PER_NODE}
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then PYTHON=$repo/.venv/bin/python; else PYTHON=python3; fi
fi
# SRUN_ARGS is a list of options: split on spaces as OpenMMLab's scripts do.
# shellcheck disable=SC2086
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" \
  exec srun -p "$PARTITION" --job-name="$JOB_NAME" ${GRES:+--gres="$GRES"} --ntasks="$GPUS" \
  --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
  "$PYTHON" -u "$@"
