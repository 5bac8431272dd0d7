"""Loading that names the file it fails on, for configs in the ``mmkd`` scope.

Registered under mmcv's and mmdet's own names, so ``type='LoadImageFromFile'`` and
``type='VOCDataset'`` resolve to these in configs with ``default_scope = 'mmkd'`` (all of mmkd's).
"""
import os.path as osp

from mmcv.transforms import LoadImageFromFile as MMCVLoadImageFromFile
from mmdet.datasets import VOCDataset as MMDetVOCDataset

from mmkd.registry import DATASETS, TRANSFORMS

JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
TAIL = 4096
CHECK = 'run tools/check_data.py on the data set to list every bad file'


class DataFileError(ValueError):
    """An image or annotation file that cannot be read; the message names it."""


def is_truncated_jpeg(path: str) -> bool:
    """A JPEG whose last bytes hold no end-of-image marker (OpenCV decodes such files without an
    error, filling the missing rows with grey). The marker cannot occur inside entropy-coded data."""
    with open(path, 'rb') as f:
        if f.read(2) != JPEG_START:
            return False
        f.seek(max(osp.getsize(path) - TAIL, 0))
        return JPEG_END not in f.read()


@TRANSFORMS.register_module(name='LoadImageFromFile')
class LoadImageFromFile(MMCVLoadImageFromFile):
    """mmcv's ``LoadImageFromFile``; a missing, empty, undecodable or truncated local image raises
    :class:`DataFileError` naming it (``ignore_empty=True`` still skips it, as in mmcv)."""

    def transform(self, results: dict):
        filename = results['img_path']
        try:
            loaded = super().transform(results)
            if loaded is not None and osp.isfile(filename) and is_truncated_jpeg(filename):
                raise DataFileError('decoded, but truncated')
        except Exception as error:
            if self.ignore_empty:
                return None
            if osp.isfile(filename) and not osp.getsize(filename):
                detail = 'empty file (0 bytes)'
            elif osp.isfile(filename) and is_truncated_jpeg(filename):
                detail = 'truncated JPEG (no end-of-image marker)'
            else:
                detail = str(error) or type(error).__name__
            raise DataFileError(f'image {filename}: {detail}; {CHECK}.') from error
        return loaded


@DATASETS.register_module(name='VOCDataset')
class VOCDataset(MMDetVOCDataset):
    """mmdet's ``VOCDataset``; an annotation XML that does not parse raises :class:`DataFileError`
    naming it (mmdet's error gives only the line and column)."""

    def parse_data_info(self, img_info: dict):
        try:
            return super().parse_data_info(img_info)
        except Exception as error:
            raise DataFileError(f"annotation {img_info['xml_path']}: {error}; {CHECK}.") from error
