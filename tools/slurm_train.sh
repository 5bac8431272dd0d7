#!/usr/bin/env bash
# Train on a Slurm cluster, one task per GPU (OpenMMLab's interface; environment in slurm_run.sh).
#   [GPUS=16 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py options]
# Resume a stopped job: the same command with --resume.
# Time limits and preemption: Slurm is asked for SIGUSR1 SIGNAL_SECONDS (default 300) before the time
# limit; on it, or on SIGTERM, every task finishes its iteration and rank 0 saves a checkpoint of it.
# REQUEUE=1 inside an sbatch job submitted with --requeue: the job then requeues itself and resumes
# from WORK_DIR (the batch script's train.py options should include --resume).
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
work_dir=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then work_dir=(--work-dir "$1"); shift; fi
if [ "${REQUEUE:-0}" = 1 ]; then export MMKD_REQUEUE=1; fi
SRUN_ARGS="--signal=USR1@${SIGNAL_SECONDS:-300} ${SRUN_ARGS:-}" \
  exec bash "$(dirname "$0")/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$(dirname "$0")/train.py" "$CONFIG" \
  "${work_dir[@]}" --launcher slurm "$@"
