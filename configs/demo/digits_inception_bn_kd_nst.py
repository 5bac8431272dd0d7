# KD + NST (poly).
_base_ = ['./digits_distill_base.py']
model = dict(distill=[{{_base_.kd_term}}, {{_base_.nst_poly_term}}])
