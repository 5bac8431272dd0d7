# The demo's detector: mmdet's Faster R-CNN + FPN on the quarter-width Inception-BN student
# (stages of 48/80/152/256 channels at strides 4/8/16/32), on 128 x 128 VOC-layout digit canvases,
# evaluated with VOC07's 11-point mAP. tools/demo.py sets the backbone checkpoint per student.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', 'mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
default_scope = 'mmkd'  # types without an inherited _scope_ resolve in mmkd (its loaders name bad files)
classes = tuple(f'digit_{k}' for k in range(10))
model = dict(
    backbone=dict(
        _delete_=True, type='mmkd.InceptionBN', out_indices=(0, 1, 2, 3), widen_factor=0.25, norm_eval=True,
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='work_dirs/demo/cls_baseline/iter_240.pth')),
    neck=dict(in_channels=[48, 80, 152, 256], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=10)),
    # At most 4 digits on a 128 x 128 canvas: 300 proposals and 128 / 64 sampled anchors / RoIs cover
    # them (mmdet's 2000 proposals and 256 / 512 samples are for 1000-pixel VOC images); measured 0.25 s
    # an iteration instead of 0.35 s.
    train_cfg=dict(rpn=dict(sampler=dict(num=128)), rpn_proposal=dict(nms_pre=500, max_per_img=300),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=300), rcnn=dict(max_per_img=50)))

data_root = 'data/demo/VOCdevkit/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VOCDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='VOC2007/ImageSets/Main/trainval.txt', data_prefix=dict(sub_data_root='VOC2007/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=16), pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VOCDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='VOC2007/ImageSets/Main/test.txt', data_prefix=dict(sub_data_root='VOC2007/'),
                 test_mode=True, pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='mmkd.VOC07Metric')
val_evaluator = test_evaluator

max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# mmdet's lr 0.02 is for 16 images a step; 4 here. Clipping as in mmdet's small-batch recipes.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, save_last=True))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)  # mmdet's runtime sets none: without it the mAP moved by a few points per run
