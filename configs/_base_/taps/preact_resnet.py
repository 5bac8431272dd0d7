# Canonical taps of mmkd's PreActResNet (CIFAR ResNet-1001): the final BatchNorm's output, before ReLU.
preact_resnet_final_bn = 'backbone.norm'   # 256 x 8 x 8 at 32
