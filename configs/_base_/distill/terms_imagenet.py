# The NST release's taps: Inception-BN in5b's batch-normalised output before ReLU (1024 x 7 x 7) and
# ResNet-101's final pre-ReLU sum (2048 x 7 x 7: the input of the last block's third ReLU call).
student_tap = 'backbone.in5b.preact'
teacher_tap = dict(module='backbone.layer4.2.relu', io='input', call=2)

kd_term = dict(loss=dict(type='KDLoss', temperature=4.0, loss_weight=16.0), student='head', teacher='head')
fitnet_term = dict(loss=dict(type='FitNetLoss', reduction='mean'), student=student_tap, teacher=teacher_tap,
                   connector=dict(type='ConvConnector', in_channels=1024, out_channels=2048))
at_term = dict(loss=dict(type='ATLoss', p=2, mode='code', loss_weight=1000.0), student=student_tap,
               teacher=teacher_tap)
nst_linear_term = dict(loss=dict(type='NSTLoss', kernel='linear', loss_weight=50.0), student=student_tap,
                       teacher=teacher_tap)
nst_poly_term = dict(loss=dict(type='NSTLoss', kernel='poly', poly_degree=2, poly_offset=0.0, loss_weight=50.0),
                     student=student_tap, teacher=teacher_tap)
nst_gaussian_term = dict(loss=dict(type='NSTLoss', kernel='gaussian', loss_weight=50.0), student=student_tap,
                         teacher=teacher_tap)
