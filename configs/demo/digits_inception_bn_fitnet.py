# FitNet hint through a 1x1 conv + BN connector (152 -> 128).
_base_ = ['./digits_distill_base.py']
model = dict(distill=[{{_base_.fitnet_term}}])
