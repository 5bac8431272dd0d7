#!/usr/bin/env bash
# The GPU path end to end on a machine without internet (each step well under 10 minutes, restartable):
#   1 install   dist/gpu-kit/install.sh into PY's environment (skipped if already installed, or --no-install)
#   2 ops       mmkd's torchvision-backed mmcv ops on the device vs the compiled kernels' golden outputs,
#               and, on a GPU, tests/test_ops.py for its CUDA cases (with --cpu the test suite runs it)
#   3 data      the digits sets (VOCdevkit and ImageNet layouts), made on the machine
#   4 voc       20 iterations of a Faster R-CNN R-101 teacher at 1000x600, 20 of the Inception-BN
#               student taught through DistillationHook (bf16 AMP), then tools/test.py on the student
#   5 imagenet  20 iterations of the ResNet-101 teacher, then 20 of KD+NST (bf16 AMP) at 224
#   6 bench     tools/benchmark_distill.py (with --cpu: one step of one case, to check that it runs)
# Logs go to LOGS/<step>.log, LOGS/summary.txt; a finished step leaves LOGS/<step>.done and is
# skipped when the script is run again (--redo STEP reruns one).
#
#   bash tools/gpu_smoke.sh [--python PY] [--logs DIR] [--steps "ops data voc"] [--redo STEP] [--no-install]
#   bash tools/gpu_smoke.sh --cpu ...   # tiny sizes, no AMP: the same steps on a CPU (tests/test_gpu_path.py)
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
logs=work_dirs/gpu_smoke
steps="install ops data voc imagenet bench"
cpu=0
redo=
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --redo) redo=$2; shift 2 ;;
    --no-install) steps=${steps/install/}; shift ;;
    --cpu) cpu=1; shift ;;
    *) echo "gpu_smoke.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
data=$logs/data
[ -n "$redo" ] && rm -f "$logs/$redo.done"

if [ "$cpu" = 1 ]; then
  device=cpu; iters=2; log_every=1; amp=(); det_scale='(160, 96)'; cls_scale=64; batch=2
  bench=(--steps 1 --warmup 0 --cases nst_poly --batch 2 --image 64)   # the tool runs; the CPU table is `make bench`'s
  op_tests=0
  # the end-of-training validation at the training size, not ResNet-101 at 256 on 297 images
  cls_val=("val_dataloader.dataset.pipeline.1.scale=$cls_scale" "val_dataloader.dataset.pipeline.2.crop_size=$cls_scale")
  data_sizes=(--det-trainval 8 --det-test 6)   # the detectors validate and test on every test image
else
  device=cuda; iters=20; log_every=5; amp=(--amp --cfg-options optim_wrapper.dtype=bfloat16); det_scale='(1000, 600)'
  cls_scale=224; batch=64; bench=(); op_tests=1; cls_val=(); data_sizes=()
fi

step_install() {
  local kit=dist/gpu-kit
  if [ ! -f "$kit/install.sh" ]; then echo "no $kit: run 'make gpu-kit' where pip has an index" >&2; return 1; fi
  "$python" -c 'import mmkd' 2>/dev/null && echo "mmkd already importable: nothing to install" && return 0
  bash "$kit/install.sh" --python "$python"
}

step_ops() {
  "$python" tools/check_mmcv_ops.py --device "$device" --atol 1e-5
  if [ "$op_tests" = 1 ]; then "$python" -m pytest -q -rs -p no:cacheprovider tests/test_ops.py; fi
}

step_data() {
  "$python" tools/demo_data.py "$data" "${data_sizes[@]}"
}

train() {  # config work_dir [cfg-options...]
  local config=$1 work=$2; shift 2
  "$python" tools/train.py "$config" --work-dir "$work" "${amp[@]}" --cfg-options \
    train_cfg.max_iters=$iters default_hooks.checkpoint.interval=$iters default_hooks.logger.interval=$log_every "$@"
}

step_voc() {
  local voc="$data/VOCdevkit/" smoke=configs/gpu_smoke
  local common=("train_dataloader.dataset.data_root=$voc" "val_dataloader.dataset.data_root=$voc"
                "test_dataloader.dataset.data_root=$voc" "train_cfg.val_interval=1000"
                "train_dataloader.dataset.pipeline.2.scale=$det_scale"
                "test_dataloader.dataset.pipeline.1.scale=$det_scale"
                "val_dataloader.dataset.pipeline.1.scale=$det_scale")
  train $smoke/digits_faster-rcnn_r101_fpn_1000x600.py "$logs/voc_teacher" "${common[@]}"
  train $smoke/digits_faster-rcnn_inception-bn_fpn_1000x600_distill-r101.py "$logs/voc_student" "${common[@]}" \
    "custom_hooks.0.teacher.checkpoint=$logs/voc_teacher/iter_$iters.pth"
  "$python" tools/test.py $smoke/digits_faster-rcnn_inception-bn_fpn_1000x600_distill-r101.py \
    "$logs/voc_student/iter_$iters.pth" --work-dir "$logs/voc_student/test" --cfg-options "${common[@]}" \
    "custom_hooks.0.teacher.checkpoint=$logs/voc_teacher/iter_$iters.pth"
}

step_imagenet() {
  local digits="$data/digits"
  local common=("train_dataloader.dataset.data_root=$digits" "val_dataloader.dataset.data_root=$digits"
                "test_dataloader.dataset.data_root=$digits" "train_dataloader.batch_size=$batch"
                "train_dataloader.num_workers=4"
                "train_dataloader.dataset.pipeline.1.scale=$cls_scale" "${cls_val[@]}")
  train configs/gpu_smoke/digits_resnet101_teacher_224.py "$logs/imagenet_teacher" "${common[@]}"
  train configs/gpu_smoke/digits_inception_bn_kd_nst_resnet101_224.py "$logs/imagenet_kd_nst" "${common[@]}" \
    "model.teacher.checkpoint=$logs/imagenet_teacher/iter_$iters.pth"
}

step_bench() {
  "$python" tools/benchmark_distill.py --device "$device" "${bench[@]}"
}

for step in $steps; do
  if [ -f "$logs/$step.done" ]; then echo "[gpu-smoke] $step: done before (--redo $step reruns it)"; continue; fi
  echo "[gpu-smoke] $step ..."
  start=$(date +%s)
  if "step_$step" > "$logs/$step.log" 2>&1; then
    touch "$logs/$step.done"
    echo "[gpu-smoke] $step: ok in $(( $(date +%s) - start )) s" | tee -a "$logs/summary.txt"
  else
    echo "[gpu-smoke] $step: FAILED after $(( $(date +%s) - start )) s; last lines of $logs/$step.log:" | tee -a "$logs/summary.txt"
    tail -n 30 "$logs/$step.log" >&2
    exit 1
  fi
done
echo "[gpu-smoke] all steps done; logs in $logs"
