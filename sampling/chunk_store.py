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
import re
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
    return hashlib.sha256(blob).hexdigest()[:32]


def tensor_digest(t: Optional[torch.Tensor]) -> Optional[str]:
    """A hash of a tensor's shape, dtype and every value (prompts, images: small tensors)."""
    if t is None:
        return None
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(("%s %s" % (list(t.shape), t.dtype)).encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:32]


def module_fingerprint(module: Optional[torch.nn.Module], samples: int = 64) -> Optional[str]:
    """A cheap identity of a model's weights: every tensor's name, shape and dtype, and
    ``samples`` values spread over it.  Two checkpoints (another fine-tune, another dtype, fp8
    against bf16, a merged LoRA) differ in it; reading it costs a few kilobytes."""
    if module is None:
        return None
    h = hashlib.sha256()
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    for name, t in tensors:
        h.update(("%s %s %s;" % (name, list(t.shape), t.dtype)).encode())
        if t.is_meta or t.numel() == 0:
            continue
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // samples)
        h.update(flat[::step][:samples].float().cpu().numpy().tobytes())
    for attr in ("compute_dtype", "attention_backend"):
        if hasattr(module, attr):
            h.update(("%s=%s;" % (attr, getattr(module, attr))).encode())
    return h.hexdigest()[:32]


CHUNK_FILE = re.compile(r"^chunk_\d{4,}\.safetensors(\..*)?$")


class ChunkFolder(ChunkSink):
    """Writes each finished chunk to ``folder`` as it comes; reads them back to resume.

    A folder is used only when it is empty of chunks or holds chunks of the same run (its
    ``run.json`` has the same signature); another run's chunks, or chunk files without a
    ``run.json``, are refused, never overwritten."""

    @staticmethod
    def check_usable(folder: str) -> None:
        """Raise ValueError for a folder no run may use: a file in its place, or chunk files
        without a ``run.json`` (nodes call it before any model loads)."""
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError("the chunk folder %s is a file, not a folder" % folder)
        if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, "run.json")):
            return
        strays = sorted(f for f in os.listdir(folder) if CHUNK_FILE.match(f))
        if strays:
            raise ValueError(
                "the chunk folder %s holds chunk files (%s%s) but no run.json, so it cannot tell whose they are; "
                "choose an empty folder, or delete them to start again"
                % (folder, strays[0], ", ..." if len(strays) > 1 else ""))

    def __init__(self, folder: str, signature: str, description: Optional[Dict] = None):
        self.folder = folder
        self.signature = signature
        self.check_usable(folder)
        os.makedirs(folder, exist_ok=True)
        manifest = os.path.join(folder, "run.json")
        if not os.path.exists(manifest):
            try:  # exclusively: two runs starting together in one folder do not both claim it
                fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    json.dump({"signature": signature, "settings": description or {}}, f, indent=1, default=str)
                return
        try:
            with open(manifest) as f:
                old = json.load(f)
            old_signature = old.get("signature") if isinstance(old, dict) else None
        except (OSError, ValueError):
            old_signature = None
        if old_signature is None:
            raise ValueError("the chunk folder %s has a damaged run.json; choose an empty folder, or delete it to "
                             "start again" % folder)
        if old_signature != signature:
            raise ValueError(
                "the chunk folder %s holds chunks of a different run (other settings, models or inputs); "
                "choose an empty folder, or delete it to start again" % folder)

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
        tmp = "%s.%d.part" % (self._path(chunk.index), os.getpid())
        try:
            save_file(tensors, tmp, metadata={"signature": self.signature, "index": str(chunk.index)})
            os.replace(tmp, self._path(chunk.index))  # a chunk file is complete or absent
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)  # a full disk leaves no partial file
            raise

    def finished(self) -> List[FinishedChunk]:
        """The chunks already on disk, in order, up to the first gap (or damaged file)."""
        from safetensors import safe_open

        out = []
        i = 0
        while os.path.exists(self._path(i)):
            try:
                with safe_open(self._path(i), framework="pt") as f:
                    if (f.metadata() or {}).get("signature") != self.signature:
                        break
                    history = f.get_tensor("history") if "history" in f.keys() else None
                    out.append(FinishedChunk(i, f.get_tensor("frames").float() / 255.0, f.get_tensor("latents"),
                                             history))
            except Exception:  # noqa: BLE001 - a damaged chunk is made again
                break
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
