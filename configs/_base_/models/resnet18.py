_base_ = ['./resnet101.py']
model = dict(backbone=dict(depth=18), in_channels=512)
