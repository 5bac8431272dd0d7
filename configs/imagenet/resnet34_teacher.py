# ResNet-34 teacher for the FSP pair (evaluation of converted torchvision weights).
_base_ = ['../_base_/models/resnet34.py', '../_base_/datasets/imagenet_bs64.py',
          '../_base_/schedules/imagenet_sgd_100e.py', '../_base_/default_runtime.py']
