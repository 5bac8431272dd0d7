# CIFAR: the ImageNet terms with the teacher tapped at ResNet-1001's final BN output before ReLU
# (256 x 8 x 8); the student tap is the same, in5b before ReLU (1024 x 8 x 8 in the CIFAR variant).
# Every term with a teacher feature tap sets it here (tests/test_pretraining.py checks that none keeps
# the ImageNet teacher's).
_base_ = ['./terms_imagenet.py', '../taps/preact_resnet.py']
fitnet_term = dict(teacher={{_base_.preact_resnet_final_bn}}, connector=dict(out_channels=256))
at_term = dict(teacher={{_base_.preact_resnet_final_bn}})
nst_linear_term = dict(teacher={{_base_.preact_resnet_final_bn}})
nst_poly_term = dict(teacher={{_base_.preact_resnet_final_bn}})
nst_gaussian_term = dict(teacher={{_base_.preact_resnet_final_bn}})
