# FSP (two stages), CIFAR ResNet-26 -> ResNet-8 on CIFAR-10: FSP's CIFAR table (metafile.yml).
_base_ = ['../_base_/distill/cifar10_resnet26_to_resnet8.py']
model = dict(distill={{_base_.fsp_terms}})
