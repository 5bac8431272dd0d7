# Pre-activation ResNet-1001 for CIFAR-100: 100 classes and CIFAR-100's own channel statistics.
_base_ = ['./preact_resnet1001_cifar.py']
model = dict(num_classes=100,
             data_preprocessor=dict(mean=[129.304, 124.070, 112.434], std=[68.170, 65.392, 70.418]))
