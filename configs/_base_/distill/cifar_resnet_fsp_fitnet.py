# FSP's CIFAR experiments (Yim et al. 2017): a deep CIFAR ResNet teaches a shallow one of the same
# stage widths, in two stages: the transfer terms alone (stage 1), then normal training (stage 2).
# FSP: per stage, the flow from its input (first layer) to its output (last layer): 16x16, 16x32
# and 32x64 matrices. FitNet, the paper's comparison: a hint from the teacher's middle stage through
# a 1x1 regressor. Stage 1 lasts 16k of the 64k iterations: our choice, the paper gives none.
two_stage = dict(switch=16000)


def _fsp_stage(k):
    stage = dict(module=f'backbone.layer{k}', io='input'), f'backbone.layer{k}'
    return dict(loss=dict(type='FSPLoss'), student=stage, teacher=stage, name=f'fsp_layer{k}')


fsp_terms = [_fsp_stage(k) for k in (1, 2, 3)]
fitnet_terms = [dict(loss=dict(type='FitNetLoss'), student='backbone.layer2', teacher='backbone.layer2',
                     connector=dict(type='ConvConnector', in_channels=32, out_channels=32))]
