"""The error every mmcv op without a torchvision-backed counterpart raises."""

PROVIDED = ('nms', 'roi_align (avg)', 'roi_pool', 'sigmoid_focal_loss')


class CompiledOpsRequired(RuntimeError):
    """An mmcv op was called that needs mmcv's compiled ops, and this install has mmcv-lite."""

    def __init__(self, op: str):
        super().__init__(
            f"mmcv op '{op}' needs mmcv's compiled ops (mmcv._ext), and this install has none "
            f"(mmcv-lite): mmkd provides only {', '.join(PROVIDED)} from torchvision. Build mmcv "
            'with compiled ops: `make setup MMCV_OPS=compiled` (tools/build_mmcv.sh; add --cuda on '
            'a GPU machine).')
