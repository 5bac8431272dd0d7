# Inception-BN for 32 x 32 CIFAR images (3x3 stride-1 stem, no stem pooling; 1024 x 8 x 8 at in5b).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='InceptionBN', out_indices=(3,), cifar=True),
    num_classes=10,
    in_channels=1024,
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[125.307, 122.961, 113.857],
                           std=[62.993, 62.089, 66.705], bgr_to_rgb=True))
