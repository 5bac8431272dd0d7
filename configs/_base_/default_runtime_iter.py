# default_runtime.py for iteration-based schedules: checkpoints every 4k iterations, iteration logs.
_base_ = ['./default_runtime.py']
default_hooks = dict(checkpoint=dict(interval=4000, by_epoch=False))
log_processor = dict(by_epoch=False)
