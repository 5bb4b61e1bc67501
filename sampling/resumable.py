"""The loop around long renders made in pieces (diffusion-forcing chunks, A1 windows).

One :class:`PieceRun` per render: finished pieces go to the caller's sink and, when a folder
is given, to a :class:`chunk_store.ChunkFolder`; pieces already in the folder from an earlier
run with the same signature are replayed instead of computed (resume after a crash or a
cancel); one progress bar counts the work of every piece; cancel is checked between pieces
(the samplers check it between steps and blocks too).

    with PieceRun(sink, folder, lambda: signature, description, total_work, "A1 windows") as run:
        for k in range(n):
            saved = run.saved(k)
            if saved is not None:
                run.replay(saved, work_of(k))     # to the sink only; advances the bar
                continue
            ...                                   # compute, calling run.progress.update()
            run.finish(FinishedChunk(k, frames, latents, history))

Every family's loop builds the ``signature`` with :func:`piece_signature`: the settings, every
input value, the weights of the models and what else changes the result.  PieceRun asks for it
only when there is a folder (hashing long inputs and fingerprinting weights takes a moment).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Callable, Dict, List, Optional

import torch

from ..host import Progress, check_interrupt
from .chunk_store import ChunkFolder, ChunkSink, FinishedChunk, Tee, module_fingerprint, run_signature, tensor_digest
from .guidance import ModelInputs


class PieceRun:
    def __init__(self, sink: ChunkSink, folder: Optional[str], signature: Callable[[], Dict],
                 description: Optional[Dict], total_work: int, label: str):
        self.sink = sink
        self.store = ChunkFolder(folder, run_signature(signature()), description) if folder else None
        self.done: List[FinishedChunk] = self.store.finished() if self.store is not None else []
        self.out = Tee(sink, self.store)
        self.progress = Progress(total_work, label)
        self.replayed = 0

    def saved(self, index: int) -> Optional[FinishedChunk]:
        """The piece ``index`` from the folder, or None when it must be computed."""
        check_interrupt()
        return self.done[index] if index < len(self.done) else None

    def replay(self, piece: FinishedChunk, work: int) -> None:
        self.sink.add(piece)
        self.replayed += 1
        self.progress.update(work)

    def finish(self, piece: FinishedChunk) -> None:
        self.out.add(piece)

    def close(self) -> None:
        self.progress.close()
        self.out.close()

    def __enter__(self) -> "PieceRun":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def piece_signature(settings, inputs: Dict[str, object], model=None, codec=None,
                    modules: Optional[Dict[str, object]] = None, identity: Optional[dict] = None) -> Dict:
    """Everything that changes the result of a render in pieces, so that a resume with another
    value is refused instead of mixing two runs.

    ``settings``: the loop's settings (a dataclass).  ``inputs``: name -> value, each by
    :func:`digest` (tensors by every value).  ``model``: the DiT, by a fingerprint of its
    weights and dtypes (:func:`chunk_store.module_fingerprint`) and its config; ``codec``: its
    ``vae`` likewise and its ``tile``; ``modules``: more modules by name (fingerprinted; a
    stand-in that is no torch module counts as None).  ``identity``: what else the caller knows
    changes the result (the files loaded, step-cache settings, ...)."""
    vae = getattr(codec, "vae", None)
    out = {
        "settings": asdict(settings),
        "dit": _fingerprint(model), "dit_config": repr(getattr(model, "config", None)),
        "vae": _fingerprint(vae), "vae_tile": repr(getattr(codec, "tile", None)) if codec is not None else None,
        "identity": identity or {},
    }
    out.update((name, _fingerprint(m)) for name, m in (modules or {}).items())
    out.update((name, digest(v)) for name, v in inputs.items())
    return out


def digest(value):
    """A JSON-able identity of an input: tensors by every value (:func:`chunk_store.tensor_digest`),
    :class:`ModelInputs` by their tensors, lists and dicts item by item, plain values as they are."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return tensor_digest(value)
    if isinstance(value, ModelInputs):
        out = [tensor_digest(value.context), tensor_digest(value.clip_fea), tensor_digest(value.y), value.fps]
        # what only some families give, named when present
        if value.time_refs is not None:
            out.append(["time_refs", tensor_digest(value.time_refs)])
        if value.segments:
            out.append(["segments", [[tensor_digest(s.latents), s.rope_start, s.t] for s in value.segments]])
        if value.rope_frame_offset:
            out.append(["rope_frame_offset", value.rope_frame_offset])
        return out
    if isinstance(value, (list, tuple)):
        return [digest(v) for v in value]
    if isinstance(value, dict):
        return {str(k): digest(v) for k, v in value.items()}
    raise TypeError("no digest for %s in a run signature" % type(value).__name__)


def _fingerprint(module) -> Optional[str]:
    return module_fingerprint(module) if isinstance(module, torch.nn.Module) else None
