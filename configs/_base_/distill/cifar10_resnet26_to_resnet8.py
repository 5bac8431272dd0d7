# CIFAR ResNet-26 teacher -> ResNet-8 student on CIFAR-10, FSP's pair; method configs set model.distill.
_base_ = ['../../cifar/resnet8_cifar10.py', './cifar_resnet_fsp_fitnet.py']
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/../../cifar/resnet26_cifar10.py',
                 checkpoint='work_dirs/resnet26_cifar10/iter_64000.pth'),
    two_stage={{_base_.two_stage}},
    distill=[])
