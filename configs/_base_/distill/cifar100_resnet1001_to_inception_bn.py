# ResNet-1001 teacher -> Inception-BN student on CIFAR-100; method configs set model.distill.
_base_ = ['../models/inception_bn_cifar100.py', '../datasets/cifar100_bs128.py', '../schedules/cifar_sgd_400e.py',
          '../default_runtime.py', './terms_cifar.py']
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/../../cifar/preact_resnet1001_cifar100.py',
                 checkpoint='work_dirs/preact_resnet1001_cifar100/epoch_400.pth'),
    distill=[])
