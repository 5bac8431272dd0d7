# KD + FitNet + NST (poly).
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.kd_term}}, {{_base_.fitnet_term}}, {{_base_.nst_poly_term}}])
