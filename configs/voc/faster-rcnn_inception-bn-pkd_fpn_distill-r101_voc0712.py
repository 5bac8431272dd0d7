# Detection-time distillation with PKD (Cao et al., NeurIPS 2022): the VOC-trained Faster R-CNN
# R-101 teaches the Inception-BN student (pretrained alone on ImageNet) during fine-tuning, through
# mmkd.DistillationHook on an otherwise unchanged config. Per-channel standardised FPN levels P2-P5
# (tuple outputs: index i is P(i+2)), weight 6 as mmrazor's Faster R-CNN R-101 -> R-50 config; PKD
# needs no connector across detector families. No published VOC number.
_base_ = ['./faster-rcnn_inception-bn-baseline_fpn_voc0712.py']


def _pkd_level(index):
    tap = dict(module='neck', index=index)
    return dict(loss=dict(type='mmkd.PKDLoss', loss_weight=6.0), student=tap, teacher=tap,
                name=f'pkd_p{index + 2}')


custom_hooks = [dict(
    type='mmkd.DistillationHook',
    teacher=dict(config='{{ fileDirname }}/faster-rcnn_r101_fpn_voc0712.py',
                 checkpoint='work_dirs/faster-rcnn_r101_fpn_voc0712/epoch_4.pth'),
    distill=[_pkd_level(i) for i in range(4)])]
