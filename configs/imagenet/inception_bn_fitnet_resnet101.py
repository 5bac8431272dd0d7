# FitNet hint at in5b through a 1x1 conv + BN connector (1024 -> 2048).
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.fitnet_term}}])
