from .cifar_resnet import CifarResNet
from .inception_bn import InceptionBN, InceptionBNHead
from .preact_resnet import PreActResNet

__all__ = ['CifarResNet', 'InceptionBN', 'InceptionBNHead', 'PreActResNet']
