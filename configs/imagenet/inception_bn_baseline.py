# Inception-BN trained alone (the "student" row).
_base_ = ['../_base_/models/inception_bn.py', '../_base_/datasets/imagenet_bs64.py',
          '../_base_/schedules/imagenet_sgd_100e.py', '../_base_/default_runtime.py']
