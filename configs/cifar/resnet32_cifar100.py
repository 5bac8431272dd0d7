# CIFAR ResNet-32 on CIFAR-100: the teacher of FSP's CIFAR-100 pair (the distillation configs load work_dirs/resnet32_cifar100/iter_64000.pth).
_base_ = ['../_base_/models/cifar_resnet_cifar100.py', '../_base_/datasets/cifar100_bs128.py',
          '../_base_/schedules/cifar_sgd_64k.py', '../_base_/default_runtime_iter.py']
model = dict(backbone=dict(depth=32))
