# KD + NST (poly) with mmkd's weight calibration instead of the hand-set weights: over the first 10
# iterations each term's weight is measured so that its gradient on the student parameters it
# reaches is half the task's (gradient share 0.5), then frozen (README "Weight calibration").
_base_ = ['./digits_distill_base.py']
auto = dict(share=0.5, iters=10)
model = dict(distill=[
    dict(loss=dict(type='KDLoss', temperature=4.0, loss_weight='auto'), student='head', teacher='head',
         auto_weight=auto),
    dict(loss=dict(type='NSTLoss', kernel='poly', loss_weight='auto'), student={{_base_.student_tap}},
         teacher={{_base_.teacher_tap}}, auto_weight=auto),
])
