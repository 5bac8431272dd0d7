# FSP (two stages), CIFAR ResNet-32 -> ResNet-14 on CIFAR-100: FSP's CIFAR table (configs/cifar/metafile.yml).
_base_ = ['./resnet14_cifar100.py', '../_base_/distill/cifar_resnet_fsp_fitnet.py']
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/resnet32_cifar100.py', checkpoint='work_dirs/resnet32_cifar100/iter_64000.pth'),
    two_stage={{_base_.two_stage}},
    distill={{_base_.fsp_terms}})
