# ResNet-101 teacher -> Inception-BN student on ImageNet; method configs set model.distill.
_base_ = ['../models/inception_bn.py', '../datasets/imagenet_bs64.py', '../schedules/imagenet_sgd_100e.py',
          '../default_runtime.py', './terms_imagenet.py']
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/../../imagenet/resnet101_teacher.py',
                 checkpoint='data/pretrained/resnet101.pth',  # tools/convert_torchvision_resnet.py
                 channels_last=True),
    distill=[])
