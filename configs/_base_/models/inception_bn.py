# Inception-BN classifier for 224 x 224 ImageNet crops (11.3 M parameters with the 1000-way head).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='InceptionBN', out_indices=(3,)),
    num_classes=1000,
    in_channels=1024,
    channels_last=True,   # NHWC: GPUs' tensor-core convolutions without a transpose per layer
    # non_blocking: the pinned batch (the loader's pin_memory) goes to the GPU without a host wait.
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, non_blocking=True))
