# CIFAR: the ImageNet terms with the teacher tapped at ResNet-1001's final BN output before ReLU
# (256 x 8 x 8); the student tap is the same, in5b before ReLU (1024 x 8 x 8 in the CIFAR variant).
_base_ = ['./terms_imagenet.py']
teacher_tap = 'backbone.norm'
fitnet_term = dict(teacher=teacher_tap, connector=dict(out_channels=256))
at_term = dict(teacher=teacher_tap)
nst_linear_term = dict(teacher=teacher_tap)
nst_poly_term = dict(teacher=teacher_tap)
nst_gaussian_term = dict(teacher=teacher_tap)
