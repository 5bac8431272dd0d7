# Detection-time distillation (beyond the paper): the VOC-trained Faster R-CNN R-101 teaches the
# NST-pretrained Inception-BN student during fine-tuning, through mmkd.DistillationHook. NST on the
# backbone's stride-16 and stride-32 stages (608 vs 1024 and 1024 vs 2048 channels), AT on the four
# FPN levels (tuple outputs: index i is P(i+2)).
_base_ = ['./faster-rcnn_inception-bn-nst-poly_fpn_voc0712.py']


def _nst_stage(index):
    tap = dict(module='backbone', index=index)
    return dict(loss=dict(type='mmkd.NSTLoss', kernel='poly', loss_weight=50.0), student=tap, teacher=tap,
                name=f'nst_c{index + 2}')


def _at_level(index):
    tap = dict(module='neck', index=index)
    return dict(loss=dict(type='mmkd.ATLoss', loss_weight=1000.0), student=tap, teacher=tap, name=f'at_p{index + 2}')


custom_hooks = [dict(
    type='mmkd.DistillationHook',
    teacher=dict(config='{{ fileDirname }}/faster-rcnn_r101_fpn_voc0712.py',
                 checkpoint='work_dirs/faster-rcnn_r101_fpn_voc0712/epoch_4.pth'),
    distill=[_nst_stage(2), _nst_stage(3), *[_at_level(i) for i in range(4)]])]
