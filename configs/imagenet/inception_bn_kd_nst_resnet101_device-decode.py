# KD + NST (poly) with the training JPEGs decoded on the GPU (nvJPEG) instead of in the data workers:
# the same recipe, for machines whose CPU cores cannot feed the GPU (tools/benchmark_input.py measures
# both). The workers read the bytes and draw the crop and flip; the student's data preprocessor
# decodes, crops, resizes and flips on the device, then normalises as before.
_base_ = ['./inception_bn_kd_nst_resnet101.py']
train_pipeline = [
    dict(type='LoadJPEGBytes'),
    dict(type='RandomResizedCropBox', scale=224, flip_prob=0.5),
    dict(type='PackJPEGInputs'),
]
train_dataloader = dict(collate_fn=dict(type='pseudo_collate'), dataset=dict(pipeline=train_pipeline))  # bytes vary in length
model = dict(student=dict(data_preprocessor=dict(type='mmkd.DeviceJPEGDataPreprocessor')))
