# As the C4 VOC07+12 base, trained on VOC2007 trainval alone.
_base_ = ['./faster-rcnn_inception-bn_c4_voc0712.py']
train_dataloader = dict(dataset=dict(dataset={{_base_.voc07_trainval}}))
