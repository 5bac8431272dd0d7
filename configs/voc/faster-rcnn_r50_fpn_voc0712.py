# Reference: mmdet's Faster R-CNN R-50-FPN on VOC07+12 (mmdet's mAP: metafile.yml), with torchvision's
# ImageNet weights from a local file (torchvision's names are mmdet ResNet's).
_base_ = ['../_base_/voc/faster-rcnn_r50_fpn_voc0712_mmkd-data.py']   # its data read by mmkd's loaders
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='data/pretrained/resnet50-0676ba61.pth')))
val_evaluator = dict(_delete_=True, type='mmkd.VOC07Metric')
test_evaluator = val_evaluator
