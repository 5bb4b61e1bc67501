"""LoRA files as they circulate, read into one neutral form.

Every LoRA file is a flat state dict whose keys are ``<prefix><layer><suffix>``:

* prefixes: ``diffusion_model.`` / ``model.diffusion_model.`` (ComfyUI, Kijai, lightx2v),
  ``transformer.`` / ``base_model.model.`` (diffusers / PEFT), ``lora_unet_`` /
  ``lora_transformer_`` (kohya-style trainers such as musubi-tuner, whose layer names have
  their dots turned into underscores), or none;
* suffixes: ``.lora_down.weight`` / ``.lora_up.weight`` (kohya, ComfyUI), ``.lora_A.weight`` /
  ``.lora_B.weight`` (PEFT; also ``.lora_A.default.weight``), ``.lora.down.weight`` /
  ``.lora.up.weight`` (old diffusers), ``.alpha`` (the scale is ``alpha / rank``; absent means
  1), ``.diff`` (a full-weight delta, e.g. for norms), ``.diff_b`` (a bias delta) and
  ``.lora_B.bias`` (PEFT's LoRA bias: a bias delta scaled like the rest of the LoRA output).

:func:`read_lora` groups the tensors by layer stem (the key without prefix handling: that is
:mod:`models.lora.targets`' job) and names the format it saw.  LyCORIS variants (LoHa, LoKr,
Tucker ``lora_mid``) are refused with a message.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

import torch

from ..loading.checkpoint import CheckpointError, TensorSource, open_weights

# suffix -> (field, role)
SUFFIXES = (
    (".lora_down.weight", "down"), (".lora_up.weight", "up"),
    (".lora_A.default.weight", "down"), (".lora_B.default.weight", "up"),
    (".lora_A.weight", "down"), (".lora_B.weight", "up"),
    (".lora.down.weight", "down"), (".lora.up.weight", "up"),
    (".lora_B.bias", "lora_bias"),
    (".diff_b", "diff_b"), (".diff", "diff"), (".alpha", "alpha"),
)
UNSUPPORTED = {
    ".hada_w1_a": "LoHa", ".hada_w1_b": "LoHa", ".lokr_w1": "LoKr", ".lokr_w2": "LoKr",
    ".lora_mid.weight": "LoCon with a Tucker middle factor", ".oft_diag": "OFT", ".oft_blocks": "OFT",
}
KOHYA_PREFIXES = ("lora_unet_", "lora_transformer_", "lora_te_", "lora_te1_")


class LoRAError(CheckpointError):
    """A LoRA file that cannot be used; the message says why."""


@dataclass
class LoRALayer:
    """What a LoRA file holds for one layer (or one parameter)."""

    down: Optional[torch.Tensor] = None     # A: [rank, in] (or [rank, in, *kernel])
    up: Optional[torch.Tensor] = None       # B: [out, rank] (or [out, rank, 1, ...])
    alpha: Optional[float] = None
    diff: Optional[torch.Tensor] = None     # full delta of the weight / parameter
    diff_b: Optional[torch.Tensor] = None   # delta of the bias
    bias_scaled: bool = False               # PEFT's lora_B.bias: part of the LoRA output, so scaled by alpha / rank

    @property
    def rank(self) -> int:
        return int(self.down.shape[0]) if self.down is not None else 0

    @property
    def scale(self) -> float:
        """alpha / rank (1 when the file has no alpha)."""
        if self.alpha is None or not self.rank:
            return 1.0
        return float(self.alpha) / self.rank

    def low_rank(self) -> bool:
        return self.down is not None and self.up is not None


@dataclass
class LoRAFile:
    name: str
    format: str                                  # "comfyui", "kohya", "diffusers", "plain"
    layers: Dict[str, LoRALayer]                 # stem (with its prefix) -> tensors
    ignored: List[str] = field(default_factory=list)   # keys not understood (reported)

    @property
    def ranks(self) -> List[int]:
        return sorted({lay.rank for lay in self.layers.values() if lay.rank})

    def describe(self) -> str:
        r = self.ranks
        rank = ("rank %d" % r[0]) if len(r) == 1 else ("ranks %s" % ", ".join(map(str, r))) if r else "no low-rank pairs"
        return "%s: %s format, %d layers, %s" % (self.name, self.format, len(self.layers), rank)


def _split(key: str):
    for suffix, role in SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)], role
    return None, None


def detect_format(stems: List[str]) -> str:
    if any(s.startswith(KOHYA_PREFIXES) for s in stems):
        return "kohya"
    if any(s.startswith(("diffusion_model.", "model.diffusion_model.")) for s in stems):
        return "comfyui"
    if any(s.startswith(("transformer.", "base_model.model.")) for s in stems):
        return "diffusers"
    return "plain"


def parse_lora(tensors: Dict[str, torch.Tensor], name: str = "<LoRA>") -> LoRAFile:
    """Group a LoRA state dict by layer."""
    layers: Dict[str, LoRALayer] = {}
    ignored = []
    for key, t in tensors.items():
        for marker, kind in UNSUPPORTED.items():
            if marker in key:
                raise LoRAError("%s is a %s file (key %s); only plain LoRA (up/down or A/B pairs, alpha, "
                                "diff, diff_b) is supported" % (name, kind, key))
        stem, role = _split(key)
        if stem is None:
            ignored.append(key)
            continue
        lay = layers.setdefault(stem, LoRALayer())
        if role == "alpha":
            lay.alpha = float(t.float().reshape(-1)[0])
        elif role == "lora_bias":
            lay.diff_b, lay.bias_scaled = t, True
        else:
            setattr(lay, role, t)
    for stem, lay in list(layers.items()):
        if (lay.down is None) != (lay.up is None):
            raise LoRAError("%s: layer %s has a %s matrix without its %s" % (
                name, stem, "down (A)" if lay.down is not None else "up (B)", "up (B)" if lay.down is not None else "down (A)"))
        if lay.low_rank() and lay.up.shape[1] != lay.down.shape[0]:
            raise LoRAError("%s: layer %s has up %s and down %s, whose ranks differ"
                            % (name, stem, list(lay.up.shape), list(lay.down.shape)))
        if not (lay.low_rank() or lay.diff is not None or lay.diff_b is not None):
            del layers[stem]  # an alpha alone
    if not layers:
        raise LoRAError("%s holds no LoRA weights (no lora_up/lora_down, lora_A/lora_B, diff or diff_b keys); "
                        "found e.g. %s" % (name, ", ".join(sorted(tensors)[:4])))
    return LoRAFile(name=name, format=detect_format(list(layers)), layers=layers, ignored=ignored)


def read_lora(path: Union[str, Dict[str, torch.Tensor], TensorSource]) -> LoRAFile:
    """Read a LoRA file (``.safetensors``, or ``.pt`` / ``.pth`` with ``weights_only``) or an
    in-memory state dict."""
    if isinstance(path, dict):
        return parse_lora(path)
    source, _, where = open_weights(path)
    name = os.path.basename(str(where or path))
    return parse_lora({k: source.get(k) for k in source.keys()}, name)
