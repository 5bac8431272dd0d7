# FSP (two stages), CIFAR ResNet-32 -> ResNet-14 on CIFAR-100: FSP's CIFAR table (metafile.yml).
_base_ = ['../_base_/distill/cifar100_resnet32_to_resnet14.py']
model = dict(distill={{_base_.fsp_terms}})
