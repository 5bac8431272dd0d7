# Taps (configs/_base_/taps/). Student: Inception-BN in5b's batch-normalised output before ReLU
# (1024 x 7 x 7), the NST release's own tap. Teacher: the release taps its MXNet ResNet-101's final
# BatchNorm output (before the last ReLU); torchvision's ResNet-101, whose weights mmkd converts, has
# no final BN, so mmkd taps its nearest counterpart, the last block's pre-ReLU sum (2048 x 7 x 7).
# Same place in the network, not the same tensor. Each term names its taps: a config that changes a
# tap sets it in every term it changes (terms_cifar.py).
_base_ = ['../taps/resnet.py', '../taps/inception_bn.py']

# The release's SoftmaxOutput(z_s / T, label=softmax(z_t / T), grad_scale=16) gives the student logits
# the gradient (16 / T)(p_s - p_t) per sample: KDLoss's T^2 factor at weight 1 (T = 4), not weight 16.
kd_term = dict(loss=dict(type='KDLoss', temperature=4.0, loss_weight=1.0), student='head', teacher='head')
fitnet_term = dict(loss=dict(type='FitNetLoss', form='code'),
                   student={{_base_.inception_bn_in5b_preact}}, teacher={{_base_.resnet101_c5_preact}},
                   connector=dict(type='ConvConnector', in_channels=1024, out_channels=2048))
at_term = dict(loss=dict(type='ATLoss', p=2, form='code', loss_weight=1000.0),
               student={{_base_.inception_bn_in5b_preact}}, teacher={{_base_.resnet101_c5_preact}})
nst_linear_term = dict(loss=dict(type='NSTLoss', kernel='linear', loss_weight=50.0),
                       student={{_base_.inception_bn_in5b_preact}}, teacher={{_base_.resnet101_c5_preact}})
nst_poly_term = dict(loss=dict(type='NSTLoss', kernel='poly', poly_degree=2, poly_offset=0.0, loss_weight=50.0),
                     student={{_base_.inception_bn_in5b_preact}}, teacher={{_base_.resnet101_c5_preact}})
nst_gaussian_term = dict(loss=dict(type='NSTLoss', kernel='gaussian', loss_weight=50.0),
                         student={{_base_.inception_bn_in5b_preact}}, teacher={{_base_.resnet101_c5_preact}})
