# Canonical taps of mmkd's InceptionBN: a block's batch-normalised output before its ReLU.
inception_bn_in5b_preact = 'backbone.in5b.preact'   # 1024 x 7 x 7 at 224 (the NST release's tap)
inception_bn_in4d_preact = 'backbone.in4d.preact'   # 608 x 14 x 14 at 224
