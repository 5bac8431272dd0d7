# The demo's teacher: mmdet's ResNet-18 at half width (32 base channels; 2.8 M parameters), on all
# 1,200 training digits; 800 iterations (about 43 epochs at batch 64) with the cosine schedule.
_base_ = ['./digits_cls_runtime.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, base_channels=32, out_indices=(3,)),
    num_classes=10, in_channels=256, data_preprocessor={{_base_.digits_preprocessor}})
max_iters = 800
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, eta_min=0.0)]
default_hooks = dict(checkpoint=dict(interval=max_iters))
