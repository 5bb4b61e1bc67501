"""Moving a model to the compute device for one job and back to system RAM afterwards."""
from __future__ import annotations

import contextlib

import torch

from .. import host


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


@contextlib.contextmanager
def on_device(module: torch.nn.Module, device=None, keep: bool = False):
    """Run a block of work with ``module`` on ``device`` (default: the host's compute device).

    Room is made first (the host may unload its own models); afterwards the module returns to
    the offload device unless ``keep``, and the allocator cache is emptied.
    """
    device = torch.device(device) if device is not None else host.torch_device()
    first = next(iter(module.parameters()), None)
    home = first.device if first is not None else torch.device("cpu")
    moved = device != home
    if moved:
        host.make_room(device, int(module_bytes(module) * 1.1))
        module.to(device)
    try:
        yield device
    finally:
        if moved and not keep:
            module.to(home)
            host.empty_cache()
