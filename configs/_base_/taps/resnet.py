# Canonical taps of mmdet's ResNet (torchvision layout), named by network and place. "preact": the
# last block's pre-ReLU sum (out + identity), recorded as the input of that block's ReLU on its last
# call (Bottleneck calls its shared ReLU 3 times, BasicBlock twice); the paper taps the features
# before the final ReLU.
resnet101_c5_preact = dict(module='backbone.layer4.2.relu', io='input', call=2)   # 2048 x 7 x 7 at 224
resnet18_c4_preact = dict(module='backbone.layer3.1.relu', io='input', call=1)    # 256 x 14 x 14 at 224
