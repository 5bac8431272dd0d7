from .cifar import CIFAR10, CIFAR100
from .imagenet import ImageNet
from .loading import DataFileError, LoadImageFromFile, VOCDataset
from .transforms import PackClsInputs, RandomCropWithPadding, RandomResizedCrop, ResizeShortEdge

__all__ = ['CIFAR10', 'CIFAR100', 'DataFileError', 'ImageNet', 'LoadImageFromFile', 'VOCDataset', 'PackClsInputs', 'RandomCropWithPadding', 'RandomResizedCrop',
           'ResizeShortEdge']
