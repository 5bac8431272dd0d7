# ResNet-18 (x0.5) -> Inception-BN (x0.25) on the demo digits. Taps at stride 16, where the 64-px
# images give 4 x 4 maps: Inception-BN's in4d before ReLU (152 channels) and the ResNet's layer3
# pre-ReLU sum (128 channels: the input of its last block's second ReLU call).
_base_ = ['./digits_inception_bn_baseline.py', '../_base_/taps/resnet.py', '../_base_/taps/inception_bn.py']
student_tap = {{_base_.inception_bn_in4d_preact}}
teacher_tap = {{_base_.resnet18_c4_preact}}
# The release's SoftmaxOutput(z_s / T, label=softmax(z_t / T), grad_scale=16) gives the student logits
# the gradient (16 / T)(p_s - p_t) per sample: KDLoss's T^2 factor at weight 1 (T = 4), not weight 16.
kd_term = dict(loss=dict(type='KDLoss', temperature=4.0, loss_weight=1.0), student='head', teacher='head')
at_term = dict(loss=dict(type='ATLoss', loss_weight=1000.0), student=student_tap, teacher=teacher_tap)
fitnet_term = dict(loss=dict(type='FitNetLoss'), student=student_tap, teacher=teacher_tap,
                   connector=dict(type='ConvConnector', in_channels=152, out_channels=128))
nst_poly_term = dict(loss=dict(type='NSTLoss', kernel='poly', loss_weight=50.0), student=student_tap,
                     teacher=teacher_tap)
model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=dict(config='{{ fileDirname }}/digits_resnet18_teacher.py',
                 checkpoint='work_dirs/demo/cls_teacher/iter_240.pth'),
    distill=[])
