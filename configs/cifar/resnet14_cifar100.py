# CIFAR ResNet-14 on CIFAR-100: the student of FSP's CIFAR-100 pair, trained alone.
_base_ = ['../_base_/models/cifar_resnet_cifar100.py', '../_base_/datasets/cifar100_bs128.py',
          '../_base_/schedules/cifar_sgd_64k.py', '../_base_/default_runtime_iter.py']
model = dict(backbone=dict(depth=14))
