# Attention transfer (beta = 1000).
_base_ = ['./digits_distill_base.py']
model = dict(distill=[{{_base_.at_term}}])
