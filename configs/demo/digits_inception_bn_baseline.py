# The demo's student alone: Inception-BN at a quarter width (0.65 M parameters), learning from the
# labelled subset (tools/demo_data.py: 20 digits per class) at batch 32; the teacher saw every digit.
_base_ = ['./digits_cls_runtime.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(type='InceptionBN', out_indices=(3,), widen_factor=0.25),
    num_classes=10, in_channels=256, data_preprocessor={{_base_.digits_preprocessor}})
train_dataloader = dict(batch_size=32, dataset=dict(ann_file='meta/train_labelled.txt'))
