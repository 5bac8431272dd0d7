# tools/gpu_smoke.sh: the ImageNet ResNet-101 teacher recipe for 20 iterations (data root and crop
# size come from the script), to give the KD+NST smoke run a teacher checkpoint.
_base_ = ['../imagenet/resnet101_teacher.py']
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=20, val_interval=1000)
param_scheduler = []
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=20, by_epoch=False))
log_processor = dict(by_epoch=False)
