# Faster R-CNN whose Inception-BN backbone was pretrained by configs/imagenet/inception_bn_kd_resnet101.py.
# Published mAP: configs/voc/metafile.yml. The pretrained student: tools/extract_student.py (baseline: the run's checkpoint).
_base_ = ['../_base_/voc/faster-rcnn_inception-bn_fpn_voc0712.py']
model = dict(backbone=dict(init_cfg=dict(checkpoint='work_dirs/students/inception_bn_kd_resnet101.pth')))
