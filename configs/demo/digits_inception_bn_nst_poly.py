# NST, polynomial kernel d=2, c=0 (lambda = 50).
_base_ = ['./digits_distill_base.py']
model = dict(distill=[{{_base_.nst_poly_term}}])
