# The NST paper's CIFAR schedule: lr 0.2 for a batch of 128, x0.1 at epochs 200 and 300, 400 epochs.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[200, 300], gamma=0.1)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=128)
