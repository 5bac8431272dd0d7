from .cifar import CIFAR10, CIFAR100
from .imagenet import ImageNet
from .transforms import PackClsInputs, RandomCropWithPadding, RandomResizedCrop, ResizeShortEdge

__all__ = ['CIFAR10', 'CIFAR100', 'ImageNet', 'PackClsInputs', 'RandomCropWithPadding', 'RandomResizedCrop',
           'ResizeShortEdge']
