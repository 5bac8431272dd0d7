# KD + FitNet on CIFAR-100.
_base_ = ['../_base_/distill/cifar100_resnet1001_to_inception_bn.py']
model = dict(distill=[{{_base_.kd_term}}, {{_base_.fitnet_term}}])
