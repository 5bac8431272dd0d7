from .inception_bn import InceptionBN
from .preact_resnet import PreActResNet

__all__ = ['InceptionBN', 'PreActResNet']
