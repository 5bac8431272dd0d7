"""Image classification for distillation pretraining: backbone, global average pooling, linear head."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from mmkd.registry import MODELS


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Any registered backbone (its last output is pooled) + a linear head, cross-entropy loss.

    Data samples carry ``gt_label`` (an int tensor); ``predict`` adds ``pred_score`` (softmax) and
    ``pred_label``. The logits are the output of the module ``head``, so KD taps ``'head'``.

    ``channels_last=True`` keeps the convolution weights and the input batch in NHWC order, the
    layout GPUs' tensor-core convolutions run in without transposing every layer (the ImageNet
    configs set it; the values equal the NCHW model's within the kernels' rounding).
    """

    def __init__(self, backbone: dict, num_classes: int, in_channels: int,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 channels_last: bool = False) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='ImgDataPreprocessor'),
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = nn.Linear(in_channels, num_classes)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)   # in place: later init and checkpoint loads keep it

    def extract_feat(self, inputs: Tensor) -> Tensor:
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(inputs)
        return feats[-1] if isinstance(feats, (tuple, list)) else feats

    def logits(self, inputs: Tensor) -> Tensor:
        return self.head(F.adaptive_avg_pool2d(self.extract_feat(inputs), 1).flatten(1))

    def forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'):
        logits = self.logits(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            labels = torch.stack([torch.as_tensor(s.gt_label).reshape(()) for s in data_samples])
            return dict(loss_cls=F.cross_entropy(logits, labels.to(logits.device)))
        if mode == 'predict':
            scores = logits.softmax(dim=1)
            samples = data_samples or [BaseDataElement() for _ in range(len(logits))]
            for sample, score in zip(samples, scores):
                sample.set_data(dict(pred_score=score, pred_label=score.argmax()))
            return samples
        raise ValueError(f"ImageClassifier mode must be 'tensor', 'loss' or 'predict', got {mode!r}.")
