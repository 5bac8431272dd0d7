# NST with the linear kernel (lambda = 50).
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.nst_linear_term}}])
