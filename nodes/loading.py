"""What the loader nodes of every family share: where a model is, the dtype and memory
widgets, the load flow of a DiT (file, compute dtype, storage, int8 / nf4, compile) and the
tiles of a VAE."""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch

from .. import host
from ..models.common.ops import default_compute_dtype
from .base import LOADERS, NodeError, as_kinds, model_list

WEIGHT_DTYPES = ["auto", "bf16", "fp16", "fp32", "fp8_e4m3fn", "fp8_e5m2", "int8", "nf4"]
ENCODER_WEIGHT_DTYPES = ["auto", "bf16", "fp16", "fp32", "fp8_e4m3fn"]
COMPUTE_DTYPES = ["auto", "bf16", "fp16", "fp32"]
VAE_DTYPES = ["fp32", "bf16", "fp16"]
ATTENTION = ["auto", "sdpa", "flash_attn", "sageattn"]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
QUANTIZED = ("int8", "nf4")  # made from bf16 weights after loading (memory/quant.py)

Kinds = Union[str, Sequence[str]]


# --------------------------------------------------------------------------- where the model is


def resolve_path(kinds: Kinds, name: str, override: str = "", empty_hint: Optional[str] = None) -> str:
    """The full path of the model chosen in a loader: ``override`` (the 'path' input) when not
    empty, else ``name`` (the list), looked up in the ComfyUI folders of ``kinds`` in order.
    Names outside those folders are refused; every problem is a :class:`NodeError`."""
    kinds = as_kinds(kinds)
    choice = (override or "").strip() or name
    if choice.startswith("(no models found"):
        raise NodeError(empty_hint or "no model file was found in the %s folder; put one there (or in a subfolder, "
                                      "and type its name into 'path')" % " / ".join(kinds))
    missing, outside = [], []
    for kind in kinds:
        try:
            return host.resolve_model(kind, choice)
        except FileNotFoundError as e:
            missing.append(str(e))
        except host.PathError as e:  # models are read inside the model folders only
            outside.append(str(e))
    if len(outside) == len(kinds):
        raise NodeError(outside[0])
    if len(kinds) == 1:
        raise NodeError(missing[0])
    raise NodeError("%r was not found in the %s folders; check the name (a name, or a full path inside them)"
                    % (choice, " / ".join(kinds)))


def optional_path(kinds: Kinds, value: str) -> Optional[str]:
    """An optional folder or file input (a tokenizer folder, ...) inside the model folders, or None."""
    return resolve_path(kinds, "", value) if (value or "").strip() else None


def check_model(kinds: Kinds, model, path) -> object:
    """VALIDATE_INPUTS of a loader: True, or why the model cannot be found (before anything runs)."""
    if model is None and not path:  # linked: checked when it runs
        return True
    try:
        resolve_path(kinds, model or "", path or "")
    except NodeError as e:
        return str(e)
    return True


def dtype_of(name: str, device=None) -> torch.dtype:
    """The torch dtype of a dtype widget; "auto": the compute dtype of ``device`` (default: the
    host's compute device): bf16 on GPUs that have it, fp16 on older ones, fp32 on the CPU."""
    if name == "auto":
        return default_compute_dtype(device if device is not None else host.torch_device())
    return DTYPES[name]


# --------------------------------------------------------------------------- widgets


def path_input(kinds: Optional[Kinds] = None, overrides: str = "model", what: str = "A file or folder") -> tuple:
    """The optional 'path' input of a loader: a name or full path inside the model folders."""
    where = "ComfyUI's %s folders" % " / ".join(as_kinds(kinds)) if kinds else "this model type's ComfyUI folders"
    return ("STRING", {"default": "", "tooltip": "%s in %s (a name, or a full path inside them); overrides '%s' "
                                                 "when not empty." % (what, where, overrides)})


def budget_input(tooltip: str) -> tuple:
    return ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5, "tooltip": tooltip})


def dit_inputs(model_tip: str, weights_note: str = "", compute_note: str = "", budget_note: str = "") -> dict:
    """The required inputs of a DiT loader: the file, weight and compute dtypes, attention, VRAM budget."""
    return {
        "model": (model_list("diffusion_models"), {"tooltip": model_tip}),
        "weight_dtype": (WEIGHT_DTYPES, {
            "default": "auto",
            "tooltip": "How weights are kept in memory. auto: fp8 files stay fp8, others in the compute dtype. fp8 "
                       "halves the memory of bf16 at a small quality cost; int8 / nf4 quantise further."
                       + weights_note}),
        "compute_dtype": (COMPUTE_DTYPES, {
            "default": "auto",
            "tooltip": "Precision of the matrix products. auto: bf16 on GPUs that have it, fp16 on older ones, fp32 "
                       "on CPU." + compute_note}),
        "attention": (ATTENTION, {
            "default": "auto",
            "tooltip": "Attention kernel. auto picks SageAttention or flash-attention when installed, else PyTorch "
                       "SDPA; an unavailable choice falls back to SDPA with a message."}),
        "vram_budget_gb": budget_input(
            "GPU memory the model may use, in GB. 0 = no budget (the whole model on the GPU). With a budget, as many "
            "blocks as fit stay on the GPU and the rest stream in just in time" + budget_note),
    }


def compile_input() -> tuple:
    return ("BOOLEAN", {"default": False, "tooltip": "torch.compile the blocks (faster after a slow first step; falls "
                                                     "back with a message where unsupported)."})


def vae_dtype_input() -> tuple:
    return (VAE_DTYPES, {"default": "fp32", "tooltip": "Precision of the VAE. The official code runs it in fp32; bf16 "
                                                       "halves its memory with a small colour error."})


# --------------------------------------------------------------------------- loading


class DiTLoaderNode:
    """Base of every family's DiT loader node: the inputs of :func:`dit_inputs` and
    :func:`dit_optional`, the check of the chosen file before anything runs, and
    :func:`load_dit` in ``load``."""

    CATEGORY = LOADERS
    RETURN_NAMES = ("model",)
    FUNCTION = "load"

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, **_):
        return check_model("diffusion_models", model, path)


def dit_optional(**more) -> dict:
    """The optional inputs of a DiT loader: 'path', the family's ``more``, 'compile' (in this order)."""
    return {"path": path_input("diffusion_models"), **more, "compile": compile_input()}


def load_dit(load: Callable, model: str, path: str, weight_dtype: str, compute_dtype: str, attention: str,
             compile: bool, **options) -> Tuple[torch.nn.Module, object, str]:
    """The load flow of every family's DiT loader node.  ``load`` is the family's engine loader
    (``load_wan_dit``, ``load_hunyuan_dit``, ...; ``options`` go to it): it reads the file to
    the offload device in the storage dtype, set to compute in the compute dtype on the
    host's device.  int8 / nf4 are made from bf16 weights afterwards (GGUF files stay as they
    are); ``compile`` compiles the blocks.  Returns (module, config, full path)."""
    from ..models.loading.checkpoint import CheckpointError

    full = resolve_path("diffusion_models", model, path)
    device = host.torch_device()
    quant = weight_dtype if weight_dtype in QUANTIZED else None
    if quant and full.lower().endswith(".gguf"):
        host.log("%s is a GGUF file, already quantized: weight_dtype %s is not applied" % (model, quant))
        quant, weight_dtype = None, "auto"
    try:
        dit, cfg = load(full, weight_dtype="bf16" if quant else weight_dtype,  # no fp32 copy on the way to int8 / nf4
                        compute_dtype=dtype_of(compute_dtype, device), device=host.offload_device(),
                        attention=attention, compute_device=device, **options)
    except CheckpointError as e:
        raise NodeError(str(e)) from e
    if quant:
        from ..memory.quant import quantize_blocks

        quantize_blocks(dit, quant)
    if compile:
        from ..memory.compile import compile_blocks

        compile_blocks(dit)
    return dit, cfg, full


def vae_tiles(tile_size: int, tile_overlap: int):
    """Our spatial VAE tiles (models.wan.vae_tiling, also used by the HunyuanVideo VAE)."""
    from ..models.wan.vae_tiling import VAETiling

    if tile_overlap >= tile_size:
        raise NodeError("tile_overlap (%d) must be smaller than tile_size (%d)" % (tile_overlap, tile_size))
    return VAETiling(tile_px=tile_size, overlap_px=tile_overlap)
