# CIFAR ResNet-32 teacher -> ResNet-14 student on CIFAR-100, FSP's pair; method configs set model.distill.
_base_ = ['../../cifar/resnet14_cifar100.py', './cifar_resnet_fsp_fitnet.py']
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/../../cifar/resnet32_cifar100.py',
                 checkpoint='work_dirs/resnet32_cifar100/iter_64000.pth'),
    two_stage={{_base_.two_stage}},
    distill=[])
