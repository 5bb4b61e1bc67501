"""Weight streaming for the DiT blocks: the ``block_hooks`` object of :class:`WanDiT`.

Resident blocks and the weights outside the blocks are copied to the device once.  Streamed
blocks keep their master copy in system RAM; just before block ``i`` runs its weights are
copied in, and right after it ran the device copies are dropped.  With prefetching, the copy
of the next streamed block starts (on a side CUDA stream) before block ``i`` computes, so the
transfer overlaps the compute; at most two streamed copies are on the device at any time.

Copies go through a :class:`Transfer`.  :class:`HostToDevice` is the real one: it packs a
block's tensors into one of two pinned staging buffers, allocated once per model and reused
for every block and every run (no pinned-memory growth), and sends the buffer in a single
copy.  Tests use a fake transfer that accounts bytes instead.

The masters are the model's own CPU tensors; while the streamer is attached, the modules hold
device copies in their place, and :meth:`BlockStreamer.detach` puts the masters back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .streamable import blocks_of

ALIGN = 64  # byte alignment of each tensor inside a packed block


# --------------------------------------------------------------------------- tensors of a module


@dataclass
class TensorRef:
    """One parameter or buffer of a module and its master (host) tensor."""

    module: nn.Module
    name: str
    is_param: bool
    master: torch.Tensor

    def set(self, value: torch.Tensor) -> None:
        if self.is_param:
            self.module._parameters[self.name] = nn.Parameter(value, requires_grad=False)
        else:
            self.module._buffers[self.name] = value

    def restore(self) -> None:
        if self.is_param:
            self.module._parameters[self.name] = self.master
        else:
            self.module._buffers[self.name] = self.master


def tensor_refs(module: nn.Module) -> List[TensorRef]:
    """Every parameter and buffer under ``module`` (each tensor once)."""
    refs, seen = [], set()
    for sub in module.modules():
        for name, p in sub._parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                refs.append(TensorRef(sub, name, True, p))
        for name, b in sub._buffers.items():
            if b is not None and id(b) not in seen:
                seen.add(id(b))
                refs.append(TensorRef(sub, name, False, b))
    return refs


def nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


@dataclass
class BlockLayout:
    """Where each tensor of a block sits inside one packed byte buffer."""

    offsets: List[int]
    sizes: List[int]
    dtypes: List[torch.dtype]
    shapes: List[Tuple[int, ...]]
    total: int

    @classmethod
    def of(cls, tensors: Sequence[torch.Tensor]) -> "BlockLayout":
        offsets, sizes, pos = [], [], 0
        for t in tensors:
            offsets.append(pos)
            sizes.append(nbytes(t))
            pos += -(-nbytes(t) // ALIGN) * ALIGN
        return cls(offsets, sizes, [t.dtype for t in tensors], [tuple(t.shape) for t in tensors], pos)

    def pack(self, tensors: Sequence[torch.Tensor], buffer: torch.Tensor) -> None:
        for t, off, n in zip(tensors, self.offsets, self.sizes):
            if n:
                buffer[off:off + n].copy_(t.detach().reshape(-1).view(torch.uint8))

    def unpack(self, flat: torch.Tensor) -> List[torch.Tensor]:
        out = []
        for off, n, dt, shape in zip(self.offsets, self.sizes, self.dtypes, self.shapes):
            if n == 0:
                out.append(torch.empty(shape, dtype=dt, device=flat.device))
            else:
                out.append(flat[off:off + n].view(dt).view(shape))
        return out


# --------------------------------------------------------------------------- transfers


class Transfer:
    """Moves weights between system RAM and the compute device.

    ``place`` makes resident copies (synchronously); ``fetch`` starts the copy of a streamed
    block and returns a handle; ``wait`` makes the copies usable by the next computation and
    returns them; ``free`` says the copies of a handle are no longer needed; ``unplace`` says
    resident copies are dropped.  Subclasses may account bytes (tests) or really copy.
    """

    device: torch.device

    def place(self, tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        raise NotImplementedError

    def unplace(self, tensors: Sequence[torch.Tensor]) -> None:
        pass

    def fetch(self, layout: BlockLayout, tensors: Sequence[torch.Tensor]):
        raise NotImplementedError

    def wait(self, handle) -> List[torch.Tensor]:
        raise NotImplementedError

    def free(self, handle) -> None:
        pass


class HostStaging:
    """Two page-locked byte buffers that every streamed copy goes through.

    Allocated on first use (pinned when CUDA is available), then reused for every block of
    every run; they only grow if a larger block must be streamed.  ``allocations`` counts the
    buffers ever allocated (tests check that it does not grow across runs).
    """

    SLOTS = 2

    def __init__(self, pin: Optional[bool] = None):
        self.pin = torch.cuda.is_available() if pin is None else pin
        self.buffers: List[torch.Tensor] = []
        self.events: List[Optional[object]] = [None] * self.SLOTS
        self.capacity = 0
        self.allocations = 0
        self._next = 0

    def ensure(self, size: int) -> None:
        if size <= self.capacity:
            return
        self.wait_all()
        self.buffers = [torch.empty(size, dtype=torch.uint8, pin_memory=self.pin) for _ in range(self.SLOTS)]
        self.allocations += self.SLOTS
        self.capacity = size

    def acquire(self) -> Tuple[int, torch.Tensor]:
        """The next buffer, once the device copy that last read it has finished."""
        slot = self._next
        self._next = (slot + 1) % self.SLOTS
        ev = self.events[slot]
        if ev is not None:
            ev.synchronize()
            self.events[slot] = None
        return slot, self.buffers[slot]

    def wait_all(self) -> None:
        for i, ev in enumerate(self.events):
            if ev is not None:
                ev.synchronize()
                self.events[i] = None

    @property
    def nbytes(self) -> int:
        return sum(nbytes(b) for b in self.buffers)


@dataclass
class _Pending:
    flat: Optional[torch.Tensor]
    event: Optional[object]
    layout: BlockLayout
    waited: bool = False


class HostToDevice(Transfer):
    """Real copies to ``device``: through pinned staging and a side stream on CUDA, plain
    synchronous copies elsewhere (MPS, XPU, or a CPU "device" in benchmarks)."""

    def __init__(self, device: torch.device, staging: HostStaging):
        self.device = torch.device(device)
        self.staging = staging
        self.cuda = self.device.type == "cuda" and torch.cuda.is_available()
        self.side_stream = torch.cuda.Stream(self.device) if self.cuda else None

    def place(self, tensors):
        return [t.to(self.device) for t in tensors]

    def fetch(self, layout, tensors):
        self.staging.ensure(layout.total)
        slot, buffer = self.staging.acquire()
        layout.pack(tensors, buffer)
        if self.cuda:
            # Allocated on the side stream: the caching allocator will not hand this memory
            # to the side stream again until the compute stream is done with it (record_stream).
            with torch.cuda.stream(self.side_stream):
                flat = torch.empty(layout.total, dtype=torch.uint8, device=self.device)
                flat.copy_(buffer[:layout.total], non_blocking=True)
                event = torch.cuda.Event()
                event.record(self.side_stream)
            self.staging.events[slot] = event
            return _Pending(flat, event, layout)
        flat = buffer[:layout.total].to(self.device, copy=True)
        return _Pending(flat, None, layout)

    def wait(self, handle: _Pending):
        if handle.event is not None and not handle.waited:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(handle.event)
            handle.flat.record_stream(compute)
        handle.waited = True
        return handle.layout.unpack(handle.flat)

    def free(self, handle: _Pending):
        handle.flat = None


# --------------------------------------------------------------------------- the hooks object


class BlockStreamer:
    """``model.block_hooks``: resident blocks stay on the device, streamed ones are copied in
    just in time (see the module docstring).

    Args:
        model: a DiT following :mod:`memory.streamable`; everything outside the streamed
            blocks is placed on the device at construction.
        streamed: indices of the blocks to stream.
        transfer: how copies are made (:class:`HostToDevice` or a test double).
        prefetch: start copying the next streamed block before the current block computes.
    """

    def __init__(self, model: nn.Module, streamed: Iterable[int], transfer: Transfer, prefetch: bool = True):
        self.model = model
        self.transfer = transfer
        self.prefetch = prefetch
        blocks = blocks_of(model)
        n = len(blocks)
        self.streamed = sorted(set(int(i) for i in streamed))
        if any(not 0 <= i < n for i in self.streamed):
            raise ValueError("streamed block indices must be in [0, %d), got %s" % (n, self.streamed))
        streamed_set = set(self.streamed)
        self.block_refs: Dict[int, List[TensorRef]] = {i: tensor_refs(blocks[i]) for i in self.streamed}
        self.layouts = {i: BlockLayout.of([r.master for r in refs]) for i, refs in self.block_refs.items()}
        skip = {id(r.master) for refs in self.block_refs.values() for r in refs}
        self.resident_refs = [r for r in tensor_refs(model) if id(r.master) not in skip]
        self._next_streamed = {}
        for i in range(n):
            later = [j for j in self.streamed if j > i]
            self._next_streamed[i] = later[0] if later else None
        self.live: Dict[int, object] = {}
        self.fetches = 0  # number of streamed copies started (for tests and messages)
        self._last = n - 1
        self._streamed_set = streamed_set
        # Merged LoRAs (models.lora.apply.WeightPatches) go into the device copies only.
        self.patches = getattr(model, "weight_patches", None)
        placed = transfer.place([r.master for r in self.resident_refs])
        for r, t in zip(self.resident_refs, placed):
            r.set(self._patched(r, t))
        self._resident_copies = placed
        self.attached = True

    # ------------------------------------------------------------------ copies

    def _patched(self, ref: TensorRef, copy: torch.Tensor) -> torch.Tensor:
        if self.patches is None:
            return copy
        with torch.no_grad():
            return self.patches.patch_copy(ref.module, ref.name, copy, ref.master)

    def _fetch(self, i: int) -> None:
        if i not in self.live:
            self.live[i] = self.transfer.fetch(self.layouts[i], [r.master for r in self.block_refs[i]])
            self.fetches += 1

    def _drop(self, i: int) -> None:
        handle = self.live.pop(i, None)
        if handle is not None:
            for r in self.block_refs[i]:
                r.restore()
            self.transfer.free(handle)

    def _keep_only(self, wanted) -> None:
        for j in [j for j in self.live if j not in wanted]:
            self._drop(j)

    # ------------------------------------------------------------------ hooks

    def before_block(self, i: int, block: nn.Module) -> None:
        if not self.attached:
            return
        current = i if i in self._streamed_set else None
        upcoming = self._next_streamed.get(i) if self.prefetch else None
        self._keep_only({j for j in (current, upcoming) if j is not None})
        if current is not None:
            self._fetch(current)
        if upcoming is not None:
            self._fetch(upcoming)
        if current is not None:
            for r, t in zip(self.block_refs[current], self.transfer.wait(self.live[current])):
                r.set(self._patched(r, t))

    def after_block(self, i: int, block: nn.Module) -> None:
        if not self.attached:
            return
        if i in self._streamed_set:
            self._drop(i)
        if i == self._last and self.prefetch and self.streamed:
            # The first streamed block of the next forward pass copies while the head runs.
            self._keep_only({self.streamed[0]})
            self._fetch(self.streamed[0])

    # ------------------------------------------------------------------ teardown

    def detach(self) -> None:
        """Drop every device copy and give the modules their host masters back."""
        if not self.attached:
            return
        for i in list(self.live):
            self._drop(i)
        for r in self.resident_refs:
            r.restore()
        self.transfer.unplace(self._resident_copies)
        self._resident_copies = []
        self.attached = False
        if getattr(self.model, "block_hooks", None) is self:
            self.model.block_hooks = None

    @property
    def resident_bytes(self) -> int:
        return sum(nbytes(r.master) for r in self.resident_refs)

    @property
    def streamed_bytes(self) -> int:
        return sum(lay.total for lay in self.layouts.values())
