# The demo's teacher: mmdet's ResNet-18 at half width (32 base channels; 2.8 M parameters).
_base_ = ['./digits_cls_runtime.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, base_channels=32, out_indices=(3,)),
    num_classes=10, in_channels=256, data_preprocessor={{_base_.digits_preprocessor}})
