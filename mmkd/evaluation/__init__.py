from .accuracy import Accuracy
from .voc import VOC07Metric, read_devkit_results, write_devkit_results

__all__ = ['Accuracy', 'VOC07Metric', 'read_devkit_results', 'write_devkit_results']
