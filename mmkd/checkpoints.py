"""Checkpoint conversions the tools and tests share: a Distiller's student alone, and torchvision's
ResNet weights in mmkd's ImageClassifier layout (tools/extract_student.py, tools/convert_torchvision_resnet.py)."""
from collections import OrderedDict

PREFIX = 'student.'


def extract_student(checkpoint: dict) -> dict:
    """The student's tensors of a ``mmkd.Distiller`` checkpoint, without ``student.``."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    student = OrderedDict((k[len(PREFIX):], v) for k, v in state_dict.items() if k.startswith(PREFIX))
    if not student:
        raise ValueError(
            f'no "{PREFIX}*" keys in the checkpoint: it is not a mmkd.Distiller checkpoint. A checkpoint '
            'from a DistillationHook run already holds the student alone; use it as it is.')
    meta = dict(checkpoint.get('meta', {}), extracted_from='mmkd.Distiller')
    return dict(state_dict=student, meta=meta)


def convert_torchvision_resnet(state_dict: dict) -> OrderedDict:
    """torchvision ResNet keys -> ``backbone.*`` and ``head.*`` (``fc.*``)."""
    if 'fc.weight' not in state_dict or 'layer4.0.conv1.weight' not in state_dict:
        raise ValueError('not a torchvision ResNet state dict: fc.weight / layer4.0.conv1.weight missing.')
    return OrderedDict((('head.' + k[3:]) if k.startswith('fc.') else 'backbone.' + k, v)
                       for k, v in state_dict.items())
