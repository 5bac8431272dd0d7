# The CIFAR ResNet for CIFAR-100: 100 classes and CIFAR-100's own channel statistics.
_base_ = ['./cifar_resnet.py']
model = dict(num_classes=100,
             data_preprocessor=dict(mean=[129.304, 124.070, 112.434], std=[68.170, 65.392, 70.418]))
