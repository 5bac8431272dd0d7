# Inception-BN classifier for 224 x 224 ImageNet crops (11.3 M parameters with the 1000-way head).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='InceptionBN', out_indices=(3,)),
    num_classes=1000,
    in_channels=1024,
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True))
