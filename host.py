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
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

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
#
# Every path a workflow names is resolved here, against its folder, and whatever leaves the
# folder is refused: ``..`` that climbs out, an absolute path elsewhere, and (for inputs and
# outputs) a symbolic link that points out.  Nodes of every family use these helpers and
# never join a user's path themselves:
#
#   resolve_input(name) -> str                      an input file (image, video, audio)
#   check_output_prefix(prefix, ext) -> None        VALIDATE_INPUTS of a save node: raises PathError
#   reserve_output_file(prefix, ext) -> OutputFile  a new file, created exclusively (never overwrites)
#   check_output_dir(name) -> None                  VALIDATE_INPUTS of a folder input (chunk folders)
#   resolve_output_dir(name, create=True) -> str    a folder inside the output folder
#   resolve_model(kind, name) -> str                a model file or folder inside the model folders
#   list_models(kind) -> [str]                      the model names (a bounded walk: no symlink loop hangs)
#   contained_path(root, name, what, links) -> str  the building block: ``name`` inside ``root``
#
# Headless (``python . run``) the folders are the ones on the command line: --output,
# --input-dir (plus the workflow's ``inputs/`` folder and the pack's example inputs) and
# --models.  Model folders may hold symbolic links (people link model files from other
# drives, as ComfyUI allows), but a model *name* must still be inside a model folder, and the
# files a model folder names (shard indexes) must stay in it (models/loading/checkpoint.py).


class PathError(ValueError):
    """A path from a workflow that leaves its folder, or an output that cannot be written;
    the message says which and why (without telling what exists outside the folder)."""


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
LISTED_EXTENSIONS = (".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt", ".gguf")

# Bounds of the model-folder walk: a folder tree deeper or larger than this is cut off with a
# log line (real model folders are a few levels deep and hold hundreds of entries).
WALK_MAX_DEPTH = 12
WALK_MAX_DIRS = 5000


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


def is_inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it (both absolute; compared as written)."""
    path, root = os.path.normcase(os.path.normpath(path)), os.path.normcase(os.path.normpath(root))
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # another drive (Windows), or a mix of absolute and relative
        return False


def contained_path(root: str, name: str, what: str = "path", links: bool = True) -> str:
    """``name`` (relative, or absolute inside ``root``) as a full path inside ``root``.

    Raises :class:`PathError` when the name leaves ``root`` by ``..`` or an absolute path, and,
    with ``links``, when a symbolic link on the way leads out of ``root``.  The check is made
    before anything is read, so the message tells nothing about files outside the folder.
    """
    if not isinstance(name, str) or not name.strip():
        raise PathError("no %s was given" % what)
    if "\x00" in name:
        raise PathError("the %s %r contains a NUL character" % (what, name))
    root = os.path.abspath(root)
    path = os.path.normpath(os.path.join(root, name))  # an absolute name replaces the root
    if not is_inside(path, root):
        raise PathError("the %s %r is outside its folder (%s); give a name inside that folder" % (what, name, root))
    if links and not is_inside(os.path.realpath(path), os.path.realpath(root)):
        raise PathError("the %s %r leads outside its folder (%s) through a symbolic link" % (what, name, root))
    return path


def comfy_package_dir() -> Optional[str]:
    """The folder of ComfyUI's ``comfy`` package when running inside ComfyUI (it ships
    tokenizer files, e.g. ``text_encoders/llama_tokenizer``), else None."""
    c = _comfy()
    if not c:
        return None
    mm = c["mm"]
    return os.path.dirname(os.path.abspath(mm.__file__))


# ---- models


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
        p = os.path.abspath(p)
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


def _walk_bounded(root: str):
    """``os.walk(root, followlinks=True)`` that visits every real folder once (so symbolic link
    loops end), at most ``WALK_MAX_DEPTH`` deep and ``WALK_MAX_DIRS`` folders in all."""
    seen = set()
    stack = [(root, 0)]
    visited = 0
    while stack:
        folder, depth = stack.pop()
        try:
            real = os.path.realpath(folder)
            key = os.stat(real)
            key = (key.st_dev, key.st_ino)
        except OSError:
            continue
        if key in seen:
            continue
        seen.add(key)
        visited += 1
        if visited > WALK_MAX_DIRS:
            log("stopped listing %s after %d folders; move unrelated files out of the model folder" % (root, WALK_MAX_DIRS))
            return
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        dirs, files = [], []
        for e in entries:
            try:
                (dirs if e.is_dir() else files).append(e.name)
            except OSError:
                continue
        yield folder, dirs, files
        if depth < WALK_MAX_DEPTH:
            for d in sorted(dirs, reverse=True):
                stack.append((os.path.join(folder, d), depth + 1))


WEIGHT_FILE_EXTENSIONS = LISTED_EXTENSIONS


def list_models(kind: str, include_folders: bool = True, extensions: Optional[Iterable[str]] = None) -> List[str]:
    """Model names under the folders of ``kind``: files, and folders that hold a model
    (a ``config.json``, an index or several shards), relative to their root, sorted.
    ``extensions``: the file endings to list (default: weight files).  Symbolic links are
    followed, each real folder once, so a link loop cannot hang it."""
    exts = tuple(e.lower() for e in extensions) if extensions is not None else WEIGHT_FILE_EXTENSIONS
    found = set()
    for root in model_folders(kind):
        if not os.path.isdir(root):
            continue
        for dirpath, _dirnames, filenames in _walk_bounded(root):
            rel_dir = os.path.relpath(dirpath, root)
            if include_folders and rel_dir != "." and _looks_like_model_folder(filenames):
                found.add(rel_dir.replace(os.sep, "/"))
            for f in filenames:
                if f.lower().endswith(exts):
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
    """The full path of model ``name`` of ``kind``: a name relative to one of the model folders
    of ``kind`` (or a full path inside one).  Symbolic links inside the folders are followed;
    a name that climbs out of every folder is refused (:class:`PathError`)."""
    if not isinstance(name, str) or not name.strip():
        raise FileNotFoundError("no %s model was chosen" % kind)
    folders = model_folders(kind)
    inside = False
    for root in folders:
        try:
            p = contained_path(root, name, "%s model" % kind, links=False)
        except PathError:
            continue
        inside = True
        if os.path.exists(p):
            return p
    where = ", ".join(folders) if folders else "none configured: pass --models DIR"
    if not inside and folders:
        raise PathError("the %s model %r is outside the %s folders (%s); models are read from those folders only"
                        % (kind, name, kind, where))
    raise FileNotFoundError("model %r not found in the %s folders (%s). Put the file there."
                            % (name, kind, where))


# ---- inputs


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
    """The folders input files are read from: ComfyUI's input folder, or (headless) the ones
    given on the command line."""
    c = _comfy()
    if c:
        return [c["folder_paths"].get_input_directory()]
    return list(_input_dirs)


_ANNOTATIONS = (("[input]", None), ("[output]", output_dir), ("[temp]", temp_dir))


def _annotated(name: str):
    """ComfyUI's ``"name.png [output]"`` form: (name, the folders it names)."""
    for tag, folder in _ANNOTATIONS:
        if name.endswith(" " + tag) or name.endswith(tag):
            bare = name[:-len(tag)].rstrip()
            return bare, ([folder()] if folder is not None else input_dirs())
    return name, input_dirs()


def resolve_input(name: str) -> str:
    """An input file (image, video, audio) in the input folders: a name (``clip.mp4``,
    ``sub/clip.mp4``, ComfyUI's ``clip.mp4 [output]``).  Raises :class:`PathError` for a name
    that leaves the folders and FileNotFoundError when it is not there."""
    if not isinstance(name, str) or not name.strip():
        raise FileNotFoundError("no input file was given")
    bare, folders = _annotated(name)
    inside = False
    for d in folders:
        try:
            p = contained_path(d, bare, "input file")
        except PathError as e:
            if "symbolic link" in str(e):
                raise
            continue
        inside = True
        if os.path.isfile(p):
            return p
    where = ", ".join(folders) if folders else "none: pass --input-dir DIR"
    if not inside and folders:
        raise PathError("the input file %r is outside the input folder (%s); put the file there and give its name"
                        % (name, where))
    raise FileNotFoundError("input file %r not found (looked in: %s)" % (name, where))


def list_inputs(extensions: Iterable[str]) -> List[str]:
    exts = tuple(e.lower() for e in extensions)
    out = set()
    for d in input_dirs():
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.lower().endswith(exts) and os.path.isfile(os.path.join(d, f)):
                    out.add(f)
    return sorted(out)


# ---- outputs


@dataclass
class OutputFile:
    """A file reserved in the output folder (created empty and exclusively, so no other run
    picks the same name); write to ``path``, and :meth:`discard` it when writing fails."""

    path: str
    subfolder: str   # relative to the output folder, "/"-separated; "" at the top
    filename: str

    def discard(self) -> None:
        try:
            os.remove(self.path)
        except OSError:
            pass


def _name_max(folder: str) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _path_max() -> int:
    try:
        return int(os.pathconf("/", "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        return 4096 if os.name != "nt" else 260


def _check_writable_folder(folder: str, what: str) -> None:
    """``folder`` exists as a writable folder, or can be made: every part of it that exists
    is a folder and the deepest existing one is writable."""
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise PathError("%s: %s is a file, not a folder" % (what, probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PathError("%s: the folder %s is not writable" % (what, probe))


def _check_lengths(folder: str, names: Sequence[str], what: str) -> None:
    limit = _name_max(folder if os.path.isdir(folder) else "/")
    for n in names:
        if len(os.fsencode(n)) > limit:
            raise PathError("%s: the name %r is longer than the %d bytes a file name may have" % (what, n[:40] + "...", limit))
    full = os.path.join(folder, *names[-1:])
    if len(os.fsencode(full)) >= _path_max():
        raise PathError("%s: the path %s... is longer than the system allows" % (what, full[:60]))


def _output_target(prefix: str, default: str = "SkyReels"):
    """(folder, subfolder, stem) of a ``filename_prefix`` such as ``"videos/run"``."""
    if not isinstance(prefix, str):
        raise PathError("filename_prefix must be text")
    given = prefix
    prefix = prefix.strip().replace("\\", "/") or default
    sub, _, stem = prefix.rpartition("/")
    stem = stem.strip() or default
    root = output_dir()
    try:
        folder = contained_path(root, sub or ".", "filename_prefix")
    except PathError as e:
        how = "leads outside" if "symbolic link" in str(e) else "is outside"
        raise PathError("the filename_prefix %r %s the output folder (%s); give a name inside it, e.g. "
                        "'videos/clip'" % (given, how, root)) from None
    sub_rel = os.path.relpath(folder, os.path.abspath(root)).replace(os.sep, "/")
    return folder, ("" if sub_rel == "." else sub_rel), stem


def check_output_prefix(prefix: str, ext: str) -> None:
    """Raise :class:`PathError` unless files named by ``prefix`` (``"sub/name"``, a counter and
    ``ext`` are added) can be written in the output folder: inside it, no file where a folder
    must be, writable, not too long.  Nothing is created (use it in VALIDATE_INPUTS)."""
    folder, sub, stem = _output_target(prefix)
    parts = [p for p in sub.split("/") if p] + ["%s_%05d%s" % (stem, 0, ext)]
    _check_lengths(folder, parts, "filename_prefix %r" % prefix)
    _check_writable_folder(folder, "filename_prefix %r" % prefix)


def reserve_output_file(prefix: str, ext: str) -> OutputFile:
    """A new file ``<output>/<sub>/<stem>_NNNNN<ext>`` for ``prefix``, created empty with
    O_EXCL: the next free counter, never an existing file, never the file another run is
    writing at the same moment."""
    check_output_prefix(prefix, ext)
    folder, sub, stem = _output_target(prefix)
    os.makedirs(folder, exist_ok=True)
    contained_path(output_dir(), folder, "filename_prefix")  # the folder made is still inside
    pat = re.compile(re.escape(stem) + r"_(\d+)" + re.escape(ext) + "$")
    used = [int(m.group(1)) for f in os.listdir(folder) for m in [pat.match(f)] if m]
    n = (max(used) + 1) if used else 1
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100000):
        name = "%s_%05d%s" % (stem, n, ext)
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            n += 1
            continue
        os.close(fd)
        return OutputFile(path, sub, name)
    raise PathError("no free file name for %r in %s" % (prefix, folder))


def check_output_dir(name: str, what: str = "folder") -> None:
    """Raise :class:`PathError` unless ``name`` is a folder inside the output folder that exists
    or can be made and is writable.  Nothing is created (use it in VALIDATE_INPUTS)."""
    path = resolve_output_dir(name, create=False, what=what)
    _check_lengths(os.path.dirname(path), [os.path.basename(path) or "x", "chunk_0000.safetensors.part"], what)
    _check_writable_folder(path, what)


def resolve_output_dir(name: str, create: bool = True, what: str = "folder") -> str:
    """The folder ``name`` (relative, or absolute inside the output folder) in the output folder;
    made when ``create``.  Raises :class:`PathError` when it would be elsewhere."""
    path = contained_path(output_dir(), name.strip() if isinstance(name, str) else name, what)
    if create:
        if os.path.exists(path) and not os.path.isdir(path):
            raise PathError("%s: %s is a file, not a folder" % (what, path))
        os.makedirs(path, exist_ok=True)
        contained_path(output_dir(), path, what)  # no link made it leave on the way
    return path


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
