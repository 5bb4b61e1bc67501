"""Where finished chunks of a long render go: memory for the node's output, and a folder on
disk so that a crash or a cancel keeps every finished chunk and the run can resume.

A chunk folder holds ``chunk_0000.safetensors`` ... (the new frames as uint8, the chunk's
latents and, for the next chunk, the history it needs) and ``run.json`` with the signature
of the settings.  A later run with the same signature skips the chunks already there.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch


@dataclass
class FinishedChunk:
    index: int
    frames: torch.Tensor          # IMAGE [T, H, W, 3] float32 in [0, 1], the new frames
    latents: torch.Tensor         # normalised latents of the whole chunk [1, 16, F, h, w]
    history: Optional[torch.Tensor]  # what the next chunk starts from (pixels or latents), if any


class ChunkSink:
    """Receives finished chunks in order."""

    def add(self, chunk: FinishedChunk) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CollectFrames(ChunkSink):
    """Keeps the frames (on the CPU) for the node's IMAGE output."""

    def __init__(self):
        self.frames: List[torch.Tensor] = []
        self.latents: List[torch.Tensor] = []

    def add(self, chunk: FinishedChunk) -> None:
        self.frames.append(chunk.frames)
        self.latents.append(chunk.latents)

    def images(self) -> torch.Tensor:
        return torch.cat(self.frames, dim=0) if self.frames else torch.zeros(0, 1, 1, 3)


def run_signature(settings: Dict) -> str:
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class ChunkFolder(ChunkSink):
    """Writes each finished chunk to ``folder`` as it comes; reads them back to resume."""

    def __init__(self, folder: str, signature: str, description: Optional[Dict] = None):
        self.folder = folder
        self.signature = signature
        os.makedirs(folder, exist_ok=True)
        manifest = os.path.join(folder, "run.json")
        if os.path.exists(manifest):
            with open(manifest) as f:
                old = json.load(f)
            if old.get("signature") != signature:
                raise ValueError(
                    "the chunk folder %s holds chunks of a different run (other settings or inputs); "
                    "choose an empty folder, or delete it to start again" % folder)
        else:
            with open(manifest, "w") as f:
                json.dump({"signature": signature, "settings": description or {}}, f, indent=1, default=str)

    def _path(self, index: int) -> str:
        return os.path.join(self.folder, "chunk_%04d.safetensors" % index)

    def add(self, chunk: FinishedChunk) -> None:
        from safetensors.torch import save_file

        tensors = {
            "frames": (chunk.frames.clamp(0, 1) * 255).round().to(torch.uint8).contiguous(),
            "latents": chunk.latents.float().cpu().contiguous(),
        }
        if chunk.history is not None:
            tensors["history"] = chunk.history.float().cpu().contiguous()
        tmp = self._path(chunk.index) + ".part"
        save_file(tensors, tmp, metadata={"signature": self.signature, "index": str(chunk.index)})
        os.replace(tmp, self._path(chunk.index))  # a chunk file is complete or absent

    def finished(self) -> List[FinishedChunk]:
        """The chunks already on disk, in order, up to the first gap."""
        from safetensors import safe_open

        out = []
        i = 0
        while os.path.exists(self._path(i)):
            with safe_open(self._path(i), framework="pt") as f:
                if (f.metadata() or {}).get("signature") != self.signature:
                    break
                history = f.get_tensor("history") if "history" in f.keys() else None
                out.append(FinishedChunk(i, f.get_tensor("frames").float() / 255.0, f.get_tensor("latents"), history))
            i += 1
        return out


class Tee(ChunkSink):
    def __init__(self, *sinks: ChunkSink):
        self.sinks = [s for s in sinks if s is not None]

    def add(self, chunk: FinishedChunk) -> None:
        for s in self.sinks:
            s.add(chunk)

    def close(self) -> None:
        for s in self.sinks:
            s.close()
