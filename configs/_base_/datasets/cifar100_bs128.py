# CIFAR-100, the official python batches unpacked under data/cifar100/; otherwise as CIFAR-10.
_base_ = ['./cifar10_bs128.py']
data_root = 'data/cifar100'
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
test_dataloader = val_dataloader
