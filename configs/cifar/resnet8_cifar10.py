# CIFAR ResNet-8 on CIFAR-10: the student of FSP's CIFAR-10 pair, trained alone.
_base_ = ['../_base_/models/cifar_resnet.py', '../_base_/datasets/cifar10_bs128.py',
          '../_base_/schedules/cifar_sgd_64k.py', '../_base_/default_runtime_iter.py']
model = dict(backbone=dict(depth=8))
