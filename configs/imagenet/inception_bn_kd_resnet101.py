# KD (T=4, weight 16) from ResNet-101.
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.kd_term}}])
