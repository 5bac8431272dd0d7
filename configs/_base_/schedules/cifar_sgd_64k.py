# He et al.'s CIFAR ResNet schedule: SGD lr 0.1 for a batch of 128, momentum 0.9, weight decay 1e-4,
# 64k iterations, x0.1 at 32k and 48k. (Yim et al. do not give theirs in the sources we have.)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=False, milestones=[32000, 48000], gamma=0.1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=64000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=128)
