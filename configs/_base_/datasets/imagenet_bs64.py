# ImageNet, 8 GPUs x 64 = 512 per step. data/imagenet/{train,val}/<wnid>/*.JPEG; for the list-file
# layout add ann_file='meta/train.txt' (lines 'relative/path label') to the datasets.
data_root = 'data/imagenet'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortEdge', scale=256),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackClsInputs'),
]
# default_collate stacks each batch in the worker: one shared-memory tensor to the trainer instead
# of 64 (tools/benchmark_input.py).
train_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True, pin_memory=True, collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageNet', data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True, collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageNet', data_root=data_root, split='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
