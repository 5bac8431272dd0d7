"""Feature taps: forward hooks that record chosen tensors of a model during its forward pass.

A tap is written in a config as a module path, ``'backbone.layer4'`` (that module's output), or
as a dict::

    dict(module='backbone.relu', io='output', call=2, index=None)

- ``io``: ``'output'`` (default) or ``'input'`` (the module's first positional input);
- ``call``: which call of a module that runs several times per forward (a shared ReLU), from 0;
- ``index``: the element of a tuple/list value (e.g. an FPN level), required for those.
"""
import difflib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from torch import Tensor, nn

TapSpec = Union[str, dict]


@dataclass(frozen=True)
class Tap:
    module: str
    io: str = 'output'
    call: int = 0
    index: Optional[int] = None

    @classmethod
    def parse(cls, spec: TapSpec) -> 'Tap':
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, dict):
            unknown = set(spec) - {'module', 'io', 'call', 'index'}
            if 'module' not in spec or unknown:
                raise ValueError(f'tap {spec!r}: a dict tap needs "module" and may have "io", "call", '
                                 f'"index"; unknown keys {sorted(unknown)}.')
            if spec.get('io', 'output') not in ('input', 'output'):
                raise ValueError(f"tap {spec!r}: io must be 'input' or 'output'.")
            return cls(**spec)
        raise ValueError(f'tap {spec!r}: expected a module path string or a dict(module=...).')

    def __str__(self) -> str:
        text = self.module if self.io == 'output' else f'{self.module} (input)'
        if self.call:
            text += f' call {self.call}'
        if self.index is not None:
            text += f'[{self.index}]'
        return text

    def select(self, value: Any) -> Tensor:
        if isinstance(value, (tuple, list)):
            if self.index is None:
                raise ValueError(
                    f"tap '{self}' gives a {type(value).__name__} of {len(value)} tensors; choose one "
                    f"with dict(module='{self.module}', index=i).")
            if not -len(value) <= self.index < len(value):
                raise ValueError(f"tap '{self}': index {self.index} out of range for {len(value)} values.")
            value = value[self.index]
        elif self.index is not None:
            raise ValueError(f"tap '{self}' has index={self.index} but the {self.io} is a single "
                             f'{type(value).__name__}.')
        if not isinstance(value, Tensor):
            raise ValueError(f"tap '{self}' gives a {type(value).__name__}, not a tensor.")
        return value


def find_module(model: nn.Module, path: str, role: str) -> nn.Module:
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, [name for name in modules if name], n=5, cutoff=0.5)
    hint = f' Closest names: {", ".join(close)}.' if close else ''
    raise ValueError(f"{role} has no module '{path}'.{hint} "
                     f'List them with [n for n, _ in model.named_modules()].')


class TapsComplete(Exception):
    """Raised by a recorder with ``stop_when_complete`` once every tap has been recorded: the rest of
    the forward pass is not needed (the teacher runs only as far as its deepest tap)."""


class FeatureRecorder:
    """Records the tapped tensors of one model; call :meth:`reset` before each forward pass.

    Each recorded tensor is a clone taken when the module runs: networks modify tensors in place
    after producing them (``out += identity``, ``ReLU(inplace=True)`` on a tapped input), which
    would otherwise change what was recorded. While ``stop_when_complete`` is set, the hook that
    records the last missing tap raises :class:`TapsComplete`, which the caller of the forward
    catches (forward hooks registered after it on that module do not run).
    """

    def __init__(self, model: nn.Module, taps: List[Tap], role: str,
                 stop_when_complete: bool = False) -> None:
        self.role = role
        self.recording = True  # the student's recorder records only in loss-mode forwards
        self.stop_when_complete = stop_when_complete
        self.taps = frozenset(taps)
        self.calls: Dict[str, int] = {}
        self.values: Dict[Tap, Tensor] = {}
        self.handles = []
        for name in dict.fromkeys(tap.module for tap in taps):
            module = find_module(model, name, role)
            module_taps = [tap for tap in dict.fromkeys(taps) if tap.module == name]
            self.handles.append(module.register_forward_pre_hook(self._input_recorder(name, module_taps)))
            self.handles.append(module.register_forward_hook(self._output_recorder(name, module_taps)))

    def _input_recorder(self, name: str, taps: List[Tap]):
        def hook(module: nn.Module, args: tuple) -> None:
            if not self.recording:
                return
            call = self.calls.get(name, 0)
            self.calls[name] = call + 1
            for tap in taps:
                if tap.io == 'input' and tap.call == call:
                    self.values[tap] = tap.select(args[0]).clone()
            self._stop_if_complete()

        return hook

    def _output_recorder(self, name: str, taps: List[Tap]):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if not self.recording:
                return
            call = self.calls[name] - 1
            for tap in taps:
                if tap.io == 'output' and tap.call == call:
                    self.values[tap] = tap.select(output).clone()
            self._stop_if_complete()

        return hook

    def _stop_if_complete(self) -> None:
        if self.stop_when_complete and len(self.values) == len(self.taps):
            raise TapsComplete

    def reset(self) -> None:
        self.calls.clear()
        self.values.clear()

    def get(self, tap: Tap) -> Tensor:
        if tap not in self.values:
            calls = self.calls.get(tap.module, 0)
            raise ValueError(
                f"{self.role} tap '{tap}' recorded nothing: module '{tap.module}' ran {calls} time(s) in "
                f'this forward pass' + (f', so call={tap.call} does not exist.' if calls else
                                        '. Is it on the path the forward takes?'))
        return self.values[tap]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
