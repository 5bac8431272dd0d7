# NST with the polynomial kernel d=2, c=0 (lambda = 50): the paper's NST row.
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.nst_poly_term}}])
