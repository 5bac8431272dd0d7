# Faster R-CNN + FPN on an Inception-BN backbone, on mmdet's VOC recipe: VOC2007+2012 trainval
# (repeated 3x, 4 epochs = 12), 1000x600, 8 GPUs x 2 images, SGD lr 0.01; tested on VOC2007 test
# with VOC07's 11-point mAP at IoU 0.5, difficult objects ignored, every class's AP reported.
_base_ = ['./faster-rcnn_r50_fpn_voc0712_mmkd-data.py']   # mmdet's recipe, its data read by mmkd's loaders
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmkd.InceptionBN',
        out_indices=(0, 1, 2, 3),  # 192 / 320 / 608 / 1024 channels at strides 4 / 8 / 16 / 32
        frozen_stages=0,
        norm_eval=True,
        # A pretrained student: tools/extract_student.py work_dirs/<run>/epoch_100.pth <this path>
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='work_dirs/students/inception_bn_baseline.pth')),
    neck=dict(in_channels=[192, 320, 608, 1024]))
val_evaluator = dict(_delete_=True, type='mmkd.VOC07Metric')
# The VOC2007-only training set, which the _voc07 configs put in place of VOC07+12.
voc07_trainval = dict(
    _delete_=True,
    type='VOCDataset',
    data_root={{_base_.data_root}},
    ann_file='VOC2007/ImageSets/Main/trainval.txt',
    data_prefix=dict(sub_data_root='VOC2007/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
    pipeline={{_base_.train_pipeline}})
test_evaluator = val_evaluator
