# KD (T=4, weight 16).
_base_ = ['./digits_distill_base.py']
model = dict(distill=[{{_base_.kd_term}}])
