# NST with the Gaussian kernel (sigma^2 = mean pairwise squared distance).
_base_ = ['../_base_/distill/imagenet_resnet101_to_inception_bn.py']
model = dict(distill=[{{_base_.nst_gaussian_term}}])
