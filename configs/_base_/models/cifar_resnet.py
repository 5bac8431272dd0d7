# He et al.'s CIFAR ResNet (3 stages of 16/32/64 channels, option-A shortcuts) for CIFAR-10; configs
# set the depth: 8 / 26 (FSP's CIFAR-10 pair), 14 / 32 (its CIFAR-100 pair).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, out_indices=(2,)),
    num_classes=10,
    in_channels=64,
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[125.307, 122.961, 113.857],
                           std=[62.993, 62.089, 66.705], bgr_to_rgb=True))
