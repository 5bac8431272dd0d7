# CIFAR ResNet-26 on CIFAR-10: the teacher of FSP's CIFAR-10 pair (the distillation configs load work_dirs/resnet26_cifar10/iter_64000.pth).
_base_ = ['../_base_/models/cifar_resnet.py', '../_base_/datasets/cifar10_bs128.py',
          '../_base_/schedules/cifar_sgd_64k.py', '../_base_/default_runtime_iter.py']
model = dict(backbone=dict(depth=26))
