"""CIFAR-10 / CIFAR-100 from the official python pickle batches."""
import codecs
import os.path as osp
import pickle
from typing import List, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

from mmkd.checkpoint_safety import numpy_pickle_globals
from mmkd.registry import DATASETS


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The batches hold dicts, lists, bytes and numpy arrays: refuse any other global."""

    def find_class(self, module: str, name: str):
        # Protocol-2 pickles written by Python 3 rebuild bytes with _codecs.encode.
        allowed = dict(numpy_pickle_globals(), **{'_codecs.encode': codecs.encode})
        if f'{module}.{name}' in allowed:
            return allowed[f'{module}.{name}']
        raise pickle.UnpicklingError(f'CIFAR batch refers to {module}.{name}; only numpy arrays are allowed.')


@DATASETS.register_module()
class CIFAR10(BaseDataset):
    """``data_root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``.

    Images are stored as H x W x 3 uint8 in BGR order (like images loaded by mmcv), in ``img``.
    """

    folder = 'cifar-10-batches-py'
    train_files: Tuple[str, ...] = tuple(f'data_batch_{i}' for i in range(1, 6))
    test_files: Tuple[str, ...] = ('test_batch',)
    meta_file, classes_key, labels_key = 'batches.meta', b'label_names', b'labels'

    def __init__(self, data_root: str, split: str = 'train', **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"{type(self).__name__} split must be 'train' or 'test', got {split!r}.")
        self.split = split
        super().__init__(data_root=data_root, **kwargs)

    def _read(self, name: str) -> dict:
        path = osp.join(self.data_root, self.folder, name)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f"{type(self).__name__}: '{path}' does not exist. Expected the official python version "
                f"unpacked under data_root: {self.data_root}/{self.folder}/"
                f"{{{', '.join(self.train_files + self.test_files)}, {self.meta_file}}}.")
        with open(path, 'rb') as f:
            try:
                return _NumpyOnlyUnpickler(f, encoding='bytes').load()
            except (pickle.UnpicklingError, EOFError, ValueError) as error:
                raise ValueError(f"{type(self).__name__}: '{path}' is not a CIFAR python batch: {error}") from error

    def load_data_list(self) -> List[dict]:
        meta = self._read(self.meta_file)
        self._metainfo['classes'] = tuple(c.decode() for c in meta[self.classes_key])
        data_list = []
        for name in self.train_files if self.split == 'train' else self.test_files:
            batch = self._read(name)
            if b'data' not in batch or self.labels_key not in batch:
                raise ValueError(f"{type(self).__name__}: batch '{name}' lacks b'data' or {self.labels_key!r}.")
            data = np.asarray(batch[b'data'], dtype=np.uint8)
            labels = batch[self.labels_key]
            if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
                raise ValueError(f"{type(self).__name__}: batch '{name}' has data {data.shape} and "
                                 f'{len(labels)} labels; expected (N, 3072) and N.')
            images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)[..., ::-1]  # RGB planes -> HWC BGR
            data_list.extend(dict(img=np.ascontiguousarray(img), gt_label=int(label), img_shape=(32, 32),
                                  ori_shape=(32, 32)) for img, label in zip(images, labels))
        return data_list


@DATASETS.register_module()
class CIFAR100(CIFAR10):
    """``data_root/cifar-100-python/{train, test, meta}`` with the 100 fine labels."""

    folder = 'cifar-100-python'
    train_files = ('train',)
    test_files = ('test',)
    meta_file, classes_key, labels_key = 'meta', b'fine_label_names', b'fine_labels'
