# Inception-BN trained alone on CIFAR-10 (the "student" row).
_base_ = ['../_base_/models/inception_bn_cifar.py', '../_base_/datasets/cifar10_bs128.py',
          '../_base_/schedules/cifar_sgd_400e.py', '../_base_/default_runtime.py']
model = dict(num_classes=10)
