# Reference and detection-time teacher: Faster R-CNN R-101-FPN on VOC07+12.
_base_ = ['./faster-rcnn_r50_fpn_voc0712.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(checkpoint='data/pretrained/resnet101-63fe2227.pth')))
