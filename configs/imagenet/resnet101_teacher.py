# ResNet-101 teacher: evaluation of torchvision's weights (converted), and the teacher the ImageNet
# distillation configs load.  tools/test.py configs/imagenet/resnet101_teacher.py data/pretrained/resnet101.pth
_base_ = ['../_base_/models/resnet101.py', '../_base_/datasets/imagenet_bs64.py',
          '../_base_/schedules/imagenet_sgd_100e.py', '../_base_/default_runtime.py']
