from .backbones import CifarResNet, InceptionBN, InceptionBNHead, PreActResNet
from .classifier import ImageClassifier

__all__ = ['CifarResNet', 'ImageClassifier', 'InceptionBN', 'InceptionBNHead', 'PreActResNet']
