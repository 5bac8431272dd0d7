# Detection-time distillation with CWD (Shu et al., ICCV 2021): the VOC-trained Faster R-CNN R-101
# teaches the Inception-BN student (pretrained alone on ImageNet) during fine-tuning, through
# mmkd.DistillationHook on an otherwise unchanged config. Channel-wise distributions matched on all
# five FPN levels (tuple outputs: index i is P(i+2); both necks give 256 channels, so no connector;
# the student's levels, a pixel smaller at 1000x600, are resized to the teacher's), tau 1 and
# weight 10 as mmrazor's Faster R-CNN R-101 -> R-50 config. No published VOC number.
_base_ = ['./faster-rcnn_inception-bn-baseline_fpn_voc0712.py']


def _cwd_level(index):
    tap = dict(module='neck', index=index)
    return dict(loss=dict(type='mmkd.CWDLoss', tau=1.0, loss_weight=10.0), student=tap, teacher=tap,
                name=f'cwd_p{index + 2}')


custom_hooks = [dict(
    type='mmkd.DistillationHook',
    teacher=dict(config='{{ fileDirname }}/faster-rcnn_r101_fpn_voc0712.py',
                 checkpoint='work_dirs/faster-rcnn_r101_fpn_voc0712/epoch_4.pth'),
    distill=[_cwd_level(i) for i in range(5)])]
