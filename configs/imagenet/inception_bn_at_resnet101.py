# Attention transfer at in5b (beta = 1000, mean over batch and positions).
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.at_term}}])
