from .backbones import InceptionBN, PreActResNet
from .classifier import ImageClassifier

__all__ = ['ImageClassifier', 'InceptionBN', 'PreActResNet']
