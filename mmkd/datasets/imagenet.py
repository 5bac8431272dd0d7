"""ImageNet in its usual folder layout, or from a list file (faster on 1.28 M files)."""
import os
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset

from mmkd.registry import DATASETS

IMAGE_EXTENSIONS = ('.jpeg', '.jpg', '.png')


@DATASETS.register_module()
class ImageNet(BaseDataset):
    """``data_root/<split>/<wnid>/*.JPEG``; classes are the sorted wnid folder names.

    With ``ann_file`` (e.g. ``'meta/train.txt'``, relative to ``data_root``) the images are listed
    instead, one ``relative/path label`` per line, paths relative to ``data_root/<split>``.
    """

    def __init__(self, data_root: str, split: str = 'train', ann_file: str = '', **kwargs) -> None:
        self.split = split
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=dict(img_path=split), **kwargs)

    @property
    def image_dir(self) -> str:
        return self.data_prefix['img_path']

    def load_data_list(self) -> List[dict]:
        if self.ann_file:
            return self._load_list_file()
        return self._scan_folders()

    def _scan_folders(self) -> List[dict]:
        if not osp.isdir(self.image_dir):
            raise FileNotFoundError(
                f"ImageNet split folder '{self.image_dir}' does not exist. Expected "
                f"{self.data_root}/{self.split}/<wnid>/<image>.JPEG, or ann_file='meta/{self.split}.txt' with "
                "'relative/path label' lines.")
        classes = sorted(d for d in os.listdir(self.image_dir) if osp.isdir(osp.join(self.image_dir, d)))
        if not classes:
            raise ValueError(f"ImageNet split folder '{self.image_dir}' has no class folders (<wnid>/).")
        self._metainfo['classes'] = tuple(classes)
        data_list = []
        for label, wnid in enumerate(classes):
            folder = osp.join(self.image_dir, wnid)
            for name in sorted(os.listdir(folder)):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    data_list.append(dict(img_path=osp.join(folder, name), gt_label=label))
        if not data_list:
            raise ValueError(f"ImageNet split folder '{self.image_dir}' has class folders but no images "
                             f'({", ".join(IMAGE_EXTENSIONS)}).')
        return data_list

    def _load_list_file(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f"ImageNet list file '{self.ann_file}' does not exist; expected lines "
                                    "'relative/path label'.")
        data_list = []
        with open(self.ann_file) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                parts = line.rsplit(maxsplit=1)
                if len(parts) != 2 or not parts[1].isdigit():
                    raise ValueError(f"{self.ann_file}:{number}: expected 'relative/path label', got {line.strip()!r}.")
                data_list.append(dict(img_path=osp.join(self.image_dir, parts[0]), gt_label=int(parts[1])))
        if not data_list:
            raise ValueError(f"ImageNet list file '{self.ann_file}' lists no images.")
        if 'classes' not in self._metainfo:
            num_classes = max(item['gt_label'] for item in data_list) + 1
            self._metainfo['classes'] = tuple(str(i) for i in range(num_classes))
        return data_list
