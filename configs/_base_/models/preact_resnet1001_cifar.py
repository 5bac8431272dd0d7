# Pre-activation ResNet-1001 (10.3 M parameters), the NST paper's CIFAR teacher.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='PreActResNet', depth=1001, out_indices=(2,)),
    num_classes=10,
    in_channels=256,
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[125.307, 122.961, 113.857],
                           std=[62.993, 62.089, 66.705], bgr_to_rgb=True))
