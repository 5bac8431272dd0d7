# C4 Faster R-CNN whose Inception-BN backbone and RoI head were pretrained by
# configs/imagenet/inception_bn_baseline.py. Published mAP: configs/voc/metafile.yml.
_base_ = ['../_base_/voc/faster-rcnn_inception-bn_c4_voc0712.py']
student = 'work_dirs/students/inception_bn_baseline.pth'
model = dict(backbone=dict(init_cfg=dict(checkpoint=student)),
             roi_head=dict(shared_head=dict(init_cfg=dict(checkpoint=student))))
