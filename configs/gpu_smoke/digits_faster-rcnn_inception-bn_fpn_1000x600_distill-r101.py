# The smoke run's student: full-width Inception-BN Faster R-CNN taught by the R-101 detector through
# mmkd.DistillationHook, NST (poly) on the stride-16 and stride-32 backbone stages, as
# configs/voc/faster-rcnn_inception-bn-nst-poly_fpn_distill-r101_voc0712.py does. tools/gpu_smoke.sh
# sets the teacher checkpoint (custom_hooks.0.teacher.checkpoint).
_base_ = ['./digits_det_1000x600.py']
model = dict(
    backbone=dict(widen_factor=1.0, init_cfg=None),
    neck=dict(in_channels=[192, 320, 608, 1024]))


def _nst_stage(index):
    tap = dict(module='backbone', index=index)
    return dict(loss=dict(type='mmkd.NSTLoss', kernel='poly', loss_weight=50.0), student=tap, teacher=tap,
                name=f'nst_c{index + 2}')


custom_hooks = [dict(
    type='mmkd.DistillationHook',
    teacher=dict(config='{{ fileDirname }}/digits_faster-rcnn_r101_fpn_1000x600.py', checkpoint=None),
    distill=[_nst_stage(2), _nst_stage(3)])]
