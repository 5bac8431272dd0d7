# CIFAR taps: Inception-BN in5b before ReLU (1024 x 8 x 8) and ResNet-1001's final BN output
# before ReLU (256 x 8 x 8).
student_tap = 'backbone.in5b.preact'
teacher_tap = 'backbone.norm'

kd_term = dict(loss=dict(type='KDLoss', temperature=4.0, loss_weight=16.0), student='head', teacher='head')
fitnet_term = dict(loss=dict(type='FitNetLoss', reduction='mean'), student=student_tap, teacher=teacher_tap,
                   connector=dict(type='ConvConnector', in_channels=1024, out_channels=256))
at_term = dict(loss=dict(type='ATLoss', p=2, mode='code', loss_weight=1000.0), student=student_tap,
               teacher=teacher_tap)
nst_linear_term = dict(loss=dict(type='NSTLoss', kernel='linear', loss_weight=50.0), student=student_tap,
                       teacher=teacher_tap)
nst_poly_term = dict(loss=dict(type='NSTLoss', kernel='poly', poly_degree=2, poly_offset=0.0, loss_weight=50.0),
                     student=student_tap, teacher=teacher_tap)
nst_gaussian_term = dict(loss=dict(type='NSTLoss', kernel='gaussian', loss_weight=50.0), student=student_tap,
                         teacher=teacher_tap)
