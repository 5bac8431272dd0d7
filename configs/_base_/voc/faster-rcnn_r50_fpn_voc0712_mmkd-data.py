# mmdet's Faster R-CNN R-50-FPN recipe on VOC07+12 with its data settings restated in the mmkd scope.
# Dicts inherited through `mmdet::` carry _scope_='mmdet', so mmdet's own image loader and VOCDataset
# would read the data: a zero-byte image or a malformed XML would end in cv2.error / ParseError
# without the file's name. Here the same pipelines and data sets (mmdet 3.3's
# _base_/datasets/voc0712.py) resolve in mmkd, whose loaders name the file (mmkd/datasets/loading.py).
_base_ = ['mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py']
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
default_scope = 'mmkd'
data_root = 'data/VOCdevkit/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),  # after Resize: boxes stay in the image's own scale
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


def _voc(year, split, pipeline, **kwargs):
    return dict(_scope_='mmkd', type='VOCDataset', data_root=data_root, ann_file=f'VOC{year}/ImageSets/Main/{split}.txt',
                data_prefix=dict(sub_data_root=f'VOC{year}/'), pipeline=pipeline, **kwargs)


_train_filter = dict(filter_empty_gt=True, min_size=32, bbox_min_size=32)
train_dataloader = dict(dataset=dict(
    _scope_='mmkd',   # RepeatDataset x3
    dataset=dict(_scope_='mmkd', datasets=[_voc('2007', 'trainval', train_pipeline, filter_cfg=_train_filter),
                                           _voc('2012', 'trainval', train_pipeline, filter_cfg=_train_filter)])))
val_dataloader = dict(dataset=_voc('2007', 'test', test_pipeline, test_mode=True))
test_dataloader = val_dataloader
