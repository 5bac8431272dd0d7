# FITNET (two stages), CIFAR ResNet-26 -> ResNet-8 on CIFAR-10: FSP's CIFAR table (configs/cifar/metafile.yml).
_base_ = ['./resnet8_cifar10.py', '../_base_/distill/cifar_resnet_fsp_fitnet.py']
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/resnet26_cifar10.py', checkpoint='work_dirs/resnet26_cifar10/iter_64000.pth'),
    two_stage={{_base_.two_stage}},
    distill={{_base_.fitnet_terms}})
