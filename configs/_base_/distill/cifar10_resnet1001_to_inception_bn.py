# ResNet-1001 teacher -> Inception-BN student on CIFAR-10; method configs set model.distill.
_base_ = ['../models/inception_bn_cifar.py', '../datasets/cifar10_bs128.py', '../schedules/cifar_sgd_400e.py',
          '../default_runtime.py', './terms_cifar.py']
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/../../cifar/preact_resnet1001_cifar10.py',
                 checkpoint='work_dirs/preact_resnet1001_cifar10/epoch_400.pth'),
    distill=[])
