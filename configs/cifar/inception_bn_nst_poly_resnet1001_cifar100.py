# NST, polynomial kernel (d=2, c=0), on CIFAR-100.
_base_ = ['../_base_/distill/cifar100_resnet1001_to_inception_bn.py']
model = dict(distill=[{{_base_.nst_poly_term}}])
