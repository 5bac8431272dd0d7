_base_ = ['./inception_bn_cifar.py']
model = dict(num_classes=100)
