from .backbones import CifarResNet, InceptionBN, PreActResNet
from .classifier import ImageClassifier

__all__ = ['CifarResNet', 'ImageClassifier', 'InceptionBN', 'PreActResNet']
