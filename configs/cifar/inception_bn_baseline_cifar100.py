# Inception-BN trained alone on CIFAR-100 (the "student" row).
_base_ = ['../_base_/models/inception_bn_cifar100.py', '../_base_/datasets/cifar100_bs128.py',
          '../_base_/schedules/cifar_sgd_400e.py', '../_base_/default_runtime.py']
