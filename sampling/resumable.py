"""The loop around long renders made in pieces (diffusion-forcing chunks, A1 windows).

One :class:`PieceRun` per render: finished pieces go to the caller's sink and, when a folder
is given, to a :class:`chunk_store.ChunkFolder`; pieces already in the folder from an earlier
run with the same signature are replayed instead of computed (resume after a crash or a
cancel); one progress bar counts the work of every piece; cancel is checked between pieces
(the samplers check it between steps and blocks too).

    with PieceRun(sink, folder, signature, description, total_work, "A1 windows") as run:
        for k in range(n):
            saved = run.saved(k)
            if saved is not None:
                run.replay(saved, work_of(k))     # to the sink only; advances the bar
                continue
            ...                                   # compute, calling run.progress.update()
            run.finish(FinishedChunk(k, frames, latents, history))
"""
from __future__ import annotations

from typing import Dict, List, Optional

from ..host import Progress, check_interrupt
from .chunk_store import ChunkFolder, ChunkSink, FinishedChunk, Tee, run_signature


class PieceRun:
    def __init__(self, sink: ChunkSink, folder: Optional[str], signature: Dict, description: Optional[Dict],
                 total_work: int, label: str):
        self.sink = sink
        self.store = ChunkFolder(folder, run_signature(signature), description) if folder else None
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
