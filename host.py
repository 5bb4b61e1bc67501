"""The one door between the pack and its host.

Everything in the pack that needs progress reporting, cancellation, model folders,
input/output folders, devices or memory management asks this module.  Inside ComfyUI
the answers come from ComfyUI (``comfy.utils``, ``comfy.model_management``,
``folder_paths``); anywhere else (the headless runner, tests, library use) they come
from plain fallbacks.  No other module outside ``nodes/`` imports ComfyUI.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
import time
from typing import Iterable, List, Optional

import torch

# --------------------------------------------------------------------------- host detection

_COMFY = None  # cached: dict of the ComfyUI modules, or {} when not inside ComfyUI


def _comfy():
    global _COMFY
    if _COMFY is None:
        mods = {}
        try:  # only succeeds inside a ComfyUI process
            import comfy.model_management as mm  # type: ignore
            import comfy.utils as cu  # type: ignore
            import folder_paths as fp  # type: ignore

            mods = {"mm": mm, "utils": cu, "folder_paths": fp}
        except Exception:
            mods = {}
        _COMFY = mods
    return _COMFY


def in_comfyui() -> bool:
    """True when running inside a ComfyUI server process."""
    return bool(_comfy())


# --------------------------------------------------------------------------- cancellation


class Interrupted(RuntimeError):
    """Raised by :func:`check_interrupt` when the user cancelled the work (headless)."""


_interrupt = threading.Event()


def request_interrupt() -> None:
    """Ask running work to stop at its next check (headless and tests)."""
    _interrupt.set()


def clear_interrupt() -> None:
    _interrupt.clear()


def check_interrupt() -> None:
    """Raise if the user cancelled.  Call it between steps, rows, chunks and blocks."""
    c = _comfy()
    if c:
        c["mm"].throw_exception_if_processing_interrupted()
    if _interrupt.is_set():
        _interrupt.clear()
        raise Interrupted("cancelled by the user")


# --------------------------------------------------------------------------- progress

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence the terminal progress bar (used by tests)."""
    global _quiet
    _quiet = bool(quiet)


class Progress:
    """A progress bar: ComfyUI's bar inside the host, a terminal bar headless.

    ``Progress(total, "sampling")``; ``update(n)`` advances, ``close()`` finishes.  Usable
    as a context manager.  Nested bars are fine: headless, each prints its own line.
    """

    def __init__(self, total: int, desc: str = "", node_id: Optional[str] = None):
        self.total = max(int(total), 1)
        self.desc = desc
        self.value = 0
        self._t0 = time.monotonic()
        self._last_draw = 0.0
        self._bar = None
        c = _comfy()
        if c:
            try:
                self._bar = c["utils"].ProgressBar(self.total, node_id=node_id)
            except TypeError:  # older ComfyUI without node_id
                self._bar = c["utils"].ProgressBar(self.total)
        self._tty = not c and not _quiet
        if self._tty:
            self._draw(force=True)

    def update(self, n: int = 1) -> None:
        self.set(self.value + n)

    def set(self, value: int) -> None:
        self.value = min(int(value), self.total)
        if self._bar is not None:
            self._bar.update_absolute(self.value, self.total)
        if self._tty:
            self._draw(force=self.value >= self.total)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        frac = self.value / self.total
        width = 24
        filled = int(frac * width)
        elapsed = now - self._t0
        eta = ""
        if 0 < self.value < self.total:
            eta = " eta %.0fs" % (elapsed / self.value * (self.total - self.value))
        line = "\r%s |%s%s| %d/%d %.0fs%s" % (
            self.desc[:28].ljust(28), "#" * filled, "-" * (width - filled),
            self.value, self.total, elapsed, eta)
        sys.stderr.write(line.ljust(80))
        if self.value >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.value < self.total and self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._tty = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def log(msg: str) -> None:
    """One line for the user: ComfyUI's console inside the host, stderr headless."""
    if _quiet and not in_comfyui():
        return
    print("[SkyReels] " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- folders

# Headless model root (``--models DIR``): a folder laid out like ComfyUI's models/.
_model_roots: List[str] = []
_output_dir: Optional[str] = None
_input_dirs: List[str] = []

# ComfyUI folder names and their older aliases.
FOLDER_ALIASES = {
    "diffusion_models": ("diffusion_models", "unet"),
    "text_encoders": ("text_encoders", "clip"),
    "clip_vision": ("clip_vision",),
    "vae": ("vae",),
    "audio_encoders": ("audio_encoders",),
}

MODEL_EXTENSIONS = (".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt", ".json", ".model")


def set_model_roots(roots: Iterable[str]) -> None:
    """Headless: folders laid out like ComfyUI's ``models/`` (searched in order)."""
    global _model_roots
    _model_roots = [os.path.abspath(r) for r in roots]


def set_output_dir(path: Optional[str]) -> None:
    global _output_dir
    _output_dir = os.path.abspath(path) if path else None


def set_input_dirs(paths: Iterable[str]) -> None:
    global _input_dirs
    _input_dirs = [os.path.abspath(p) for p in paths]


def model_folders(kind: str) -> List[str]:
    """All folders that hold models of ``kind`` (a ComfyUI folder name)."""
    c = _comfy()
    out: List[str] = []
    names = FOLDER_ALIASES.get(kind, (kind,))
    if c:
        fp = c["folder_paths"]
        for n in names:
            try:
                out.extend(fp.get_folder_paths(n))
            except Exception:
                pass
    for root in _model_roots:
        for n in names:
            out.append(os.path.join(root, n))
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


def list_models(kind: str, include_folders: bool = True) -> List[str]:
    """Model names under the folders of ``kind``: files, and folders that hold a model
    (a ``config.json``, an index or several shards), relative to their root, sorted."""
    found = set()
    for root in model_folders(kind):
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            rel_dir = os.path.relpath(dirpath, root)
            if include_folders and rel_dir != "." and _looks_like_model_folder(filenames):
                found.add(rel_dir.replace(os.sep, "/"))
            for f in filenames:
                if f.lower().endswith((".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt", ".gguf")):
                    rel = os.path.normpath(os.path.join(rel_dir, f))
                    found.add(rel.replace(os.sep, "/"))
    return sorted(found)


def _looks_like_model_folder(filenames: List[str]) -> bool:
    names = set(filenames)
    if "model_index.json" in names:  # a diffusers pipeline folder (the loaders find their subfolder)
        return True
    if "config.json" in names and any(f.endswith((".safetensors", ".bin", ".pth")) for f in names):
        return True
    return any(f.endswith(".index.json") for f in names)


def resolve_model(kind: str, name: str) -> str:
    """The full path of model ``name`` of ``kind``; ``name`` may also be an existing path."""
    if not name:
        raise FileNotFoundError("no %s model was chosen" % kind)
    expanded = os.path.expanduser(name)
    if os.path.isabs(expanded) and os.path.exists(expanded):
        return expanded
    for root in model_folders(kind):
        p = os.path.join(root, name)
        if os.path.exists(p):
            return p
    if os.path.exists(expanded):
        return os.path.abspath(expanded)
    folders = model_folders(kind)
    raise FileNotFoundError(
        "model %r not found in the %s folders (%s). Put the file there, or give a full path."
        % (name, kind, ", ".join(folders) if folders else "none configured: pass --models DIR"))


def output_dir() -> str:
    c = _comfy()
    if c:
        return c["folder_paths"].get_output_directory()
    return _output_dir or os.path.abspath("output")


def temp_dir() -> str:
    c = _comfy()
    if c:
        return c["folder_paths"].get_temp_directory()
    import tempfile

    return os.path.join(tempfile.gettempdir(), "skyreels")


def input_dirs() -> List[str]:
    c = _comfy()
    if c:
        return [c["folder_paths"].get_input_directory()]
    return list(_input_dirs) + [os.getcwd()]


def resolve_input(name: str) -> str:
    """An input file (image, video, audio): a full path, or a name in the input folders."""
    if not name:
        raise FileNotFoundError("no input file was given")
    expanded = os.path.expanduser(name)
    if os.path.isabs(expanded) and os.path.exists(expanded):
        return expanded
    c = _comfy()
    if c:
        try:
            p = c["folder_paths"].get_annotated_filepath(name)
            if os.path.exists(p):
                return p
        except Exception:
            pass
    for d in input_dirs():
        p = os.path.join(d, expanded)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("input file %r not found (looked in: %s)" % (name, ", ".join(input_dirs())))


def list_inputs(extensions: Iterable[str]) -> List[str]:
    exts = tuple(e.lower() for e in extensions)
    out = set()
    for d in input_dirs():
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.lower().endswith(exts) and os.path.isfile(os.path.join(d, f)):
                    out.add(f)
    return sorted(out)


# --------------------------------------------------------------------------- devices and memory


def torch_device() -> torch.device:
    """Where the heavy work runs."""
    c = _comfy()
    if c:
        return c["mm"].get_torch_device()
    forced = os.environ.get("SKYREELS_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def offload_device() -> torch.device:
    """Where idle weights wait (system RAM)."""
    c = _comfy()
    if c:
        return c["mm"].unet_offload_device()
    return torch.device("cpu")


def free_memory(device: torch.device) -> int:
    """Bytes free for new allocations on ``device`` (CPU: available RAM)."""
    device = torch.device(device)
    c = _comfy()
    if c:
        try:
            return int(c["mm"].get_free_memory(device))
        except Exception:
            pass
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def make_room(device: torch.device, bytes_needed: int) -> None:
    """Ask the host to unload its own models until ``bytes_needed`` fit on ``device``."""
    device = torch.device(device)
    c = _comfy()
    if c and device.type != "cpu":
        try:
            c["mm"].free_memory(int(bytes_needed), device)
        except Exception:
            pass


def empty_cache() -> None:
    """Return cached allocator blocks to the driver."""
    c = _comfy()
    if c:
        try:
            c["mm"].soft_empty_cache()
            return
        except Exception:
            pass
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- model residency (memory cooperation with ComfyUI)
#
# Inside ComfyUI our models are registered with its memory manager: wrapped in a
# comfy.model_patcher.ModelPatcher and loaded through comfy.model_management.load_models_gpu,
# which first unloads other models to make room and can later unload ours when it needs
# room itself.  Headless, models are simply moved with .to(device).


class _ResidencyHandle(torch.nn.Module):
    """What ComfyUI's ModelPatcher holds: our model plus a writable ``device`` attribute
    (ModelPatcher assigns ``model.device``, which our models expose read-only)."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        super().__init__()
        self.diffusion_model = model
        self.device = device


def _module_bytes(model: torch.nn.Module) -> int:
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def _host_patcher(model: torch.nn.Module, device: torch.device):
    patcher = model.__dict__.get("_host_patcher")
    if patcher is not None and torch.device(patcher.load_device) == device:
        return patcher
    import comfy.model_patcher  # type: ignore  # only inside ComfyUI

    handle = _ResidencyHandle(model, model_device(model))
    patcher = comfy.model_patcher.ModelPatcher(handle, load_device=device, offload_device=offload_device())
    model.__dict__["_host_patcher"] = patcher
    return patcher


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU for a module without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def load_model(model: torch.nn.Module, device: torch.device, memory_required: int = 0) -> None:
    """Put the whole of ``model`` on ``device``, leaving ``memory_required`` bytes for its work.

    Inside ComfyUI the model is loaded through ComfyUI's memory manager (which frees other
    models first and may unload this one later when it needs room); headless it is moved.
    """
    device = torch.device(device)
    c = _comfy()
    if c and device.type != "cpu":
        try:
            patcher = _host_patcher(model, device)
            try:
                c["mm"].load_models_gpu([patcher], memory_required=int(memory_required), force_full_load=True)
            except TypeError:  # older ComfyUI without force_full_load
                c["mm"].load_models_gpu([patcher], memory_required=int(memory_required))
            if model_device(model) != device:  # ComfyUI chose not to move everything
                model.to(device)
            return
        except Exception as e:  # keep working with an unexpected ComfyUI version
            log("ComfyUI's memory manager could not load %s (%s); moving it directly"
                % (type(model).__name__, e))
    if device.type != "cpu":
        make_room(device, _module_bytes(model) + int(memory_required))
    model.to(device)


def unload_model(model: torch.nn.Module) -> None:
    """Move ``model`` back to the offload device (and tell ComfyUI it is gone)."""
    c = _comfy()
    patcher = model.__dict__.get("_host_patcher")
    if c and patcher is not None:
        try:
            loaded = c["mm"].current_loaded_models
            for i, entry in enumerate(list(loaded)):
                if entry.model is patcher:
                    loaded.pop(i).model_unload()
                    break
        except Exception:
            pass
    model.to(offload_device())


# ---- system RAM
#
# glibc's allocator keeps freed blocks of up to 32 MB in its heap (its mmap threshold grows
# after the first large free), so a process that frees many weight-sized tensors (loading,
# quantizing, dropping streamed copies) keeps a high RSS, and the next run grows it further.
# ``malloc_trim(0)`` returns the free pages.  A no-op where glibc is not the allocator.

_trim = None


def trim_host_memory() -> bool:
    """Return free heap pages to the system (glibc only); True if it ran."""
    global _trim
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _trim = libc.malloc_trim
                _trim.argtypes = [ctypes.c_size_t]
                _trim.restype = ctypes.c_int
            except (OSError, AttributeError):
                _trim = False
    if not _trim:
        return False
    _trim(0)
    return True
