# As the VOC07+12 base, trained on VOC2007 trainval alone.
_base_ = ['./faster-rcnn_inception-bn_fpn_voc0712.py']
train_dataloader = dict(
    dataset=dict(dataset=dict(
        _delete_=True,
        type='VOCDataset',
        data_root={{_base_.data_root}},
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
        pipeline={{_base_.train_pipeline}})))
