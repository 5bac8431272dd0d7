# Pre-activation ResNet-1001 on CIFAR-100: the teacher's own training (and the teacher the
# CIFAR-100 distillation configs load from work_dirs/preact_resnet1001_cifar100/epoch_400.pth).
_base_ = ['../_base_/models/preact_resnet1001_cifar100.py', '../_base_/datasets/cifar100_bs128.py',
          '../_base_/schedules/cifar_sgd_400e.py', '../_base_/default_runtime.py']
