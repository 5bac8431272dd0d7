# C4 Faster R-CNN whose Inception-BN backbone and RoI head were pretrained by
# configs/imagenet/inception_bn_at_resnet101.py. Published mAP: configs/voc/metafile.yml.
_base_ = ['../_base_/voc/faster-rcnn_inception-bn_c4_voc07.py']
student = 'work_dirs/students/inception_bn_at_resnet101.pth'
model = dict(backbone=dict(init_cfg=dict(checkpoint=student)),
             roi_head=dict(shared_head=dict(init_cfg=dict(checkpoint=student))))
