# tools/gpu_smoke.sh's detection recipe: the demo's digit canvases upscaled to mmdet's VOC size
# (1000 x 600, 2 images a step), FPN and heads at mmdet's widths; backbones come from the configs below.
_base_ = ['../demo/digits_faster-rcnn_inception-bn_fpn.py']
model = dict(
    neck=dict(out_channels=256),
    rpn_head=dict(in_channels=256, feat_channels=256),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=256),
                  bbox_head=dict(in_channels=256, fc_out_channels=1024)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=512))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=1000), rcnn=dict(max_per_img=100)))
scale = (1000, 600)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=2, num_workers=2, dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(batch_size=2, num_workers=2, dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
max_iters = 20
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(interval=max_iters, by_epoch=False, save_last=True))
