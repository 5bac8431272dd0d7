# The demo's student alone: Inception-BN at a quarter width (0.65 M parameters).
_base_ = ['./digits_cls_runtime.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(type='InceptionBN', out_indices=(3,), widen_factor=0.25),
    num_classes=10, in_channels=256, data_preprocessor={{_base_.digits_preprocessor}})
