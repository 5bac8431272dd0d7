from .cifar import CIFAR10, CIFAR100
from .device_decode import DeviceJPEGDataPreprocessor, LoadJPEGBytes, PackJPEGInputs, RandomResizedCropBox
from .imagenet import ImageNet
from .loading import DataFileError, LoadImageFromFile, VOCDataset
from .transforms import PackClsInputs, RandomCropWithPadding, RandomResizedCrop, ResizeShortEdge

__all__ = ['CIFAR10', 'CIFAR100', 'DataFileError', 'DeviceJPEGDataPreprocessor', 'ImageNet', 'LoadImageFromFile',
           'LoadJPEGBytes', 'PackClsInputs', 'PackJPEGInputs', 'RandomCropWithPadding', 'RandomResizedCrop',
           'RandomResizedCropBox', 'ResizeShortEdge', 'VOCDataset']
