# KD + NST (poly): the paper's best ImageNet row.
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.kd_term}}, {{_base_.nst_poly_term}}])
