# The detection-time teacher of the smoke run: Faster R-CNN R-101-FPN (random init; 20 iterations).
_base_ = ['./digits_det_1000x600.py']
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=101, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
                  style='pytorch', init_cfg=None),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
