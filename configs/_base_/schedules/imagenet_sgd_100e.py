# The NST authors' ImageNet schedule: Nesterov SGD, lr 0.1 for a batch of 512 (8 x 64), 100 epochs.
# fused=True: one kernel for the whole update, and it lets mmkd's non-finite guard skip a bad step on
# the device instead of reading the loss on the host every iteration (mmkd/engine/nonfinite_guard.py).
# Another total batch (one GPU, batch 256): tools/train.py --auto-scale-lr scales lr linearly by
# batch / 512 (README, "ImageNet on one GPU").
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True,
                                    fused=True))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=512)
