# The paper era's Faster R-CNN (mx-rcnn; mmdet's faster-rcnn_r50-caffe-c4) on Inception-BN: RPN and
# RoI pooling on in4d (stage 2, 608 channels, stride 16), the last stage (in4e, in5a, in5b) as the
# RoI head on 14 x 14 RoI features, average pooling, then the box head. Data, schedule and metric
# as the FPN base. Both backbone and head load the pretrained student (the configs set both).
_base_ = ['./faster-rcnn_inception-bn_fpn_voc0712.py']
student = 'work_dirs/students/inception_bn_baseline.pth'
model = dict(
    backbone=dict(num_stages=3, out_indices=(2, ), init_cfg=dict(checkpoint=student)),
    neck=None,
    rpn_head=dict(
        in_channels=608,
        feat_channels=608,
        anchor_generator=dict(scales=[2, 4, 8, 16, 32], ratios=[0.5, 1.0, 2.0], strides=[16])),
    roi_head=dict(
        shared_head=dict(type='mmkd.InceptionBNHead', norm_eval=True,
                         init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=student)),
        bbox_roi_extractor=dict(roi_layer=dict(output_size=14), out_channels=608, featmap_strides=[16]),
        bbox_head=dict(_delete_=True, type='BBoxHead', with_avg_pool=True, roi_feat_size=7, in_channels=1024,
                       num_classes=20,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),
                       reg_class_agnostic=False,
                       loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                       loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    # mmdet's C4 proposal counts (one feature level, so more proposals before NMS than per FPN level).
    train_cfg=dict(rpn_proposal=dict(nms_pre=12000, max_per_img=2000)),
    test_cfg=dict(rpn=dict(nms_pre=6000, max_per_img=1000)))
