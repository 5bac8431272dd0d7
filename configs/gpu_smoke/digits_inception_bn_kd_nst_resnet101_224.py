# tools/gpu_smoke.sh: the paper's best ImageNet row (KD + NST-poly, ResNet-101 -> Inception-BN) for
# 20 iterations; the script sets the data root, the crop size and the teacher checkpoint.
_base_ = ['../imagenet/inception_bn_kd_nst_resnet101.py']
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=20, val_interval=1000)
param_scheduler = []
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=20, by_epoch=False))
log_processor = dict(by_epoch=False)
