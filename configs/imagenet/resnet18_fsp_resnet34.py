# FSP (Yim et al. 2017) on a pair whose widths allow it: ResNet-34 -> ResNet-18, the same
# 64/128/256/512 stage widths. Each stage's flow (its input -> its output) is matched; as in the
# paper, stage 1 trains on the FSP terms alone (the first 10 epochs, our choice for ImageNet), then
# the student trains on the labels. 'mean' reduction keeps the 256 x 512 matrices' scale moderate.
_base_ = ['../_base_/models/resnet18.py', '../_base_/datasets/imagenet_bs64.py',
          '../_base_/schedules/imagenet_sgd_100e.py', '../_base_/default_runtime.py']


def _fsp_stage(k):
    stage = dict(module=f'backbone.layer{k}', io='input'), f'backbone.layer{k}'
    return dict(loss=dict(type='FSPLoss', form='code'), student=stage, teacher=stage, name=f'fsp_layer{k}')


model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/resnet34_teacher.py', checkpoint='data/pretrained/resnet34.pth'),
    two_stage=dict(switch=10, by_epoch=True),
    distill=[_fsp_stage(k) for k in (1, 2, 3, 4)])
