"""Every training iteration draws its random numbers from (seed, iteration) alone."""
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmkd.registry import HOOKS


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Reseeds torch's generators (CPU and every CUDA device) before each training iteration with a
    32-bit seed mixed from ``(seed, iteration)`` by numpy's ``SeedSequence`` (torch's CPU generator keeps
    only the low 32 bits of a seed, so a plain ``seed * 2**32 + iteration`` would drop the seed).

    Why: a paired comparison fine-tunes several backbones with one seed, so that what the seed decides
    (head initialisation, data order) is shared by every arm and cancels in the per-seed difference.
    Without this hook the detector's later random draws are not shared: mmdet's RPN and RoI samplers
    draw ``torch.randperm`` over each image's candidates, whose number depends on the backbone, so
    after the first iteration each arm reads a different part of the stream. With it, iteration ``i``
    starts from the same generator state in every arm, and a run resumed at ``i`` draws what the
    uninterrupted run drew. Python's and numpy's generators (data augmentation, drawn in the data
    loader before this hook runs) are left alone.

    Config::

        custom_hooks = [dict(type='mmkd.IterationSeedHook')]   # seed: randomness.seed (--seed N)

    Args:
        seed: the base seed; by default the runner's (``randomness.seed``, else the one it drew).
    """

    priority = 'VERY_HIGH'   # before any hook that draws (e.g. a distiller's diagnostics)

    def __init__(self, seed: Optional[int] = None) -> None:
        if seed is not None and seed < 0:
            raise ValueError(f'IterationSeedHook(seed={seed}): give a non-negative seed.')
        self.seed = seed

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        seed = runner.seed if self.seed is None else self.seed
        torch.manual_seed(int(np.random.SeedSequence([seed, runner.iter]).generate_state(1)[0]))
