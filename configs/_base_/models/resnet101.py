# ResNet-101 (mmdet's ResNet: torchvision's layout and parameter names), the ImageNet teacher.
# Weights: tools/convert_torchvision_resnet.py turns torchvision's checkpoint into this model's.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=101, out_indices=(3,), style='pytorch'),
    num_classes=1000,
    in_channels=2048,
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True))
