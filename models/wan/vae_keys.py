"""State-dict naming of the Wan2.1 VAE: official <-> diffusers, prefixes, config inference.

The model's own parameter names are the official ones (the keys of ``Wan2.1_VAE.pth``, also
used by ComfyUI's repackaged ``wan_2.1_vae.safetensors``).  Diffusers ``AutoencoderKLWan``
checkpoints rename them (golden README §4; shapes are identical):

* ``conv1``/``conv2`` -> ``quant_conv``/``post_quant_conv``;
* in the encoder and decoder: ``conv1`` -> ``conv_in``, ``head.0`` -> ``norm_out``,
  ``head.2`` -> ``conv_out``, ``middle.0/1/2`` -> ``mid_block.resnets.0`` /
  ``mid_block.attentions.0`` / ``mid_block.resnets.1``;
* residual blocks: ``residual.0/2/3/6`` -> ``norm1/conv1/norm2/conv2``, ``shortcut`` ->
  ``conv_shortcut``;
* ``encoder.downsamples.N`` -> ``encoder.down_blocks.N`` (same flat index);
* the flat ``decoder.upsamples.i`` is regrouped by stage: with per = num_res_blocks + 2 and
  (stage, j) = divmod(i, per), j <= num_res_blocks -> ``decoder.up_blocks.stage.resnets.j``,
  else ``decoder.up_blocks.stage.upsamplers.0``.  (This assumes no attention inside the
  stages, ``attn_scales = []``, which is what every released Wan VAE uses.)
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .vae import WanVAEConfig

# Prefixes put in front of the VAE names by bundling tools (ComfyUI checkpoints, pipelines).
KNOWN_PREFIXES = ("first_stage_model.", "vae.", "model.", "autoencoder.", "module.")

OFFICIAL_MARKERS = ("encoder.conv1.weight", "decoder.conv1.weight", "conv2.weight")
DIFFUSERS_MARKERS = ("encoder.conv_in.weight", "decoder.conv_in.weight", "post_quant_conv.weight")

_RESIDUAL_O2D = (("residual.0.", "norm1."), ("residual.2.", "conv1."), ("residual.3.", "norm2."),
                 ("residual.6.", "conv2."), ("shortcut.", "conv_shortcut."))
_RESIDUAL_D2O = tuple((d, o) for o, d in _RESIDUAL_O2D)
_ENDS_O2D = {"conv1": "conv_in", "head.0": "norm_out", "head.2": "conv_out"}
_ENDS_D2O = {v: k for k, v in _ENDS_O2D.items()}
_MIDDLE_O2D = {"0": "resnets.0", "1": "attentions.0", "2": "resnets.1"}
_MIDDLE_D2O = {v: k for k, v in _MIDDLE_O2D.items()}
_TOP_O2D = {"conv1": "quant_conv", "conv2": "post_quant_conv"}
_TOP_D2O = {v: k for k, v in _TOP_O2D.items()}


def _rename(rest: str, table) -> str:
    for a, b in table:
        if rest.startswith(a):
            return b + rest[len(a):]
    return rest


# --------------------------------------------------------------------------- official -> diffusers

_O_TOP = re.compile(r"^(conv1|conv2)\.(.+)$")
_O_ENDS = re.compile(r"^(encoder|decoder)\.(conv1|head\.0|head\.2)\.(.+)$")
_O_MIDDLE = re.compile(r"^(encoder|decoder)\.middle\.(\d+)\.(.+)$")
_O_DOWN = re.compile(r"^encoder\.downsamples\.(\d+)\.(.+)$")
_O_UP = re.compile(r"^decoder\.upsamples\.(\d+)\.(.+)$")


def official_to_diffusers(key: str, num_res_blocks: int = 2) -> str:
    """Diffusers name of an official key (unknown keys are returned unchanged)."""
    m = _O_TOP.match(key)
    if m:
        return "%s.%s" % (_TOP_O2D[m.group(1)], m.group(2))
    m = _O_ENDS.match(key)
    if m:
        return "%s.%s.%s" % (m.group(1), _ENDS_O2D[m.group(2)], m.group(3))
    m = _O_MIDDLE.match(key)
    if m and m.group(2) in _MIDDLE_O2D:
        return "%s.mid_block.%s.%s" % (m.group(1), _MIDDLE_O2D[m.group(2)], _rename(m.group(3), _RESIDUAL_O2D))
    m = _O_DOWN.match(key)
    if m:
        return "encoder.down_blocks.%s.%s" % (m.group(1), _rename(m.group(2), _RESIDUAL_O2D))
    m = _O_UP.match(key)
    if m:
        per = num_res_blocks + 2
        stage, j = divmod(int(m.group(1)), per)
        if j <= num_res_blocks:
            return "decoder.up_blocks.%d.resnets.%d.%s" % (stage, j, _rename(m.group(2), _RESIDUAL_O2D))
        return "decoder.up_blocks.%d.upsamplers.0.%s" % (stage, m.group(2))
    return key


# --------------------------------------------------------------------------- diffusers -> official

_D_TOP = re.compile(r"^(quant_conv|post_quant_conv)\.(.+)$")
_D_ENDS = re.compile(r"^(encoder|decoder)\.(conv_in|norm_out|conv_out)\.(.+)$")
_D_MIDDLE = re.compile(r"^(encoder|decoder)\.mid_block\.(resnets\.\d+|attentions\.\d+)\.(.+)$")
_D_DOWN = re.compile(r"^encoder\.down_blocks\.(\d+)\.(.+)$")
_D_UP_RES = re.compile(r"^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")
_D_UP_SAMPLE = re.compile(r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$")


def diffusers_to_official(key: str, num_res_blocks: int = 2) -> str:
    """Official name of a diffusers key (unknown keys are returned unchanged)."""
    m = _D_TOP.match(key)
    if m:
        return "%s.%s" % (_TOP_D2O[m.group(1)], m.group(2))
    m = _D_ENDS.match(key)
    if m:
        return "%s.%s.%s" % (m.group(1), _ENDS_D2O[m.group(2)], m.group(3))
    m = _D_MIDDLE.match(key)
    if m and m.group(2) in _MIDDLE_D2O:
        return "%s.middle.%s.%s" % (m.group(1), _MIDDLE_D2O[m.group(2)], _rename(m.group(3), _RESIDUAL_D2O))
    m = _D_DOWN.match(key)
    if m:
        return "encoder.downsamples.%s.%s" % (m.group(1), _rename(m.group(2), _RESIDUAL_D2O))
    per = num_res_blocks + 2
    m = _D_UP_RES.match(key)
    if m:
        return "decoder.upsamples.%d.%s" % (int(m.group(1)) * per + int(m.group(2)),
                                             _rename(m.group(3), _RESIDUAL_D2O))
    m = _D_UP_SAMPLE.match(key)
    if m:
        return "decoder.upsamples.%d.%s" % (int(m.group(1)) * per + per - 1, m.group(2))
    return key


def diffusers_num_res_blocks(keys: Iterable[str]) -> int:
    """num_res_blocks of a diffusers-named VAE: the decoder stages hold num_res_blocks + 1
    residual blocks."""
    most = -1
    for k in keys:
        m = _D_UP_RES.match(k)
        if m and m.group(1) == "0":
            most = max(most, int(m.group(2)))
    return most if most > 0 else 2


# --------------------------------------------------------------------------- detection


def find_prefix(keys: Iterable[str]) -> Optional[Tuple[str, str]]:
    """(naming, prefix) of a Wan VAE among ``keys``, naming "official" or "diffusers"."""
    keys = set(keys)
    for prefix in ("",) + KNOWN_PREFIXES:
        if all(prefix + m in keys for m in DIFFUSERS_MARKERS):
            return "diffusers", prefix
        if all(prefix + m in keys for m in OFFICIAL_MARKERS):
            return "official", prefix
    # Any other prefix: look for the encoder's first conv and its decoder twin.
    for k in keys:
        for naming, markers in (("official", OFFICIAL_MARKERS), ("diffusers", DIFFUSERS_MARKERS)):
            if k.endswith("." + markers[0]):
                prefix = k[: -len(markers[0])]
                if all(prefix + m in keys for m in markers):
                    return naming, prefix
    return None


def detect_naming(keys: Iterable[str], shape_of=None) -> Optional[Tuple[str, str]]:
    """(naming, prefix) if the keys are those of a Wan-style causal 3D VAE, else None.

    ``shape_of(key)`` (optional) rules out 2D image VAEs that share some names: the Wan VAE's
    first encoder conv is a 5D (3D-conv) weight.
    """
    found = find_prefix(keys)
    if found is None:
        return None
    naming, prefix = found
    if shape_of is not None:
        first = prefix + ("encoder.conv1.weight" if naming == "official" else "encoder.conv_in.weight")
        if len(tuple(shape_of(first))) != 5:
            return None
    return found


def to_official_names(keys: Iterable[str], naming: str, prefix: str) -> Dict[str, str]:
    """file key -> official key, for every key under ``prefix`` (others are left out)."""
    keys = [k for k in keys if k.startswith(prefix)]
    if naming == "diffusers":
        nrb = diffusers_num_res_blocks(k[len(prefix):] for k in keys)
        return {k: diffusers_to_official(k[len(prefix):], nrb) for k in keys}
    return {k: k[len(prefix):] for k in keys}


# --------------------------------------------------------------------------- config inference

_DOWN = re.compile(r"^encoder\.downsamples\.(\d+)\.(.+)$")


def infer_config(shapes: Mapping[str, Sequence[int]]) -> WanVAEConfig:
    """The configuration of a Wan VAE from its official-named shapes.

    dim from ``encoder.conv1.weight``, z_dim from ``conv2.weight``, and the stages from the
    flat ``encoder.downsamples`` list: a ``resample`` entry ends a stage (with ``time_conv``
    when it also halves time), residual entries give the stage width and count, attention
    entries (``to_qkv``) the attention scales.  Raises KeyError for a missing tensor and
    ValueError for a VAE this model does not implement.
    """

    def need(k):
        if k not in shapes:
            raise KeyError(k)
        return list(shapes[k])

    first = need("encoder.conv1.weight")  # [dim, 3, 3, 3, 3]
    if len(first) != 5:
        raise ValueError("encoder.conv1.weight has shape %s; a Wan VAE has a 3D conv there" % first)
    if first[1] != 3:
        raise ValueError("encoder.conv1.weight takes %d input channels, the Wan2.1 VAE takes 3 (RGB). "
                         "A 12-channel input is the Wan2.2 VAE (z_dim 48), which is not supported." % first[1])
    dim = first[0]
    z_dim = need("conv2.weight")[0]

    entries: Dict[int, Dict[str, List[int]]] = {}
    for k, s in shapes.items():
        m = _DOWN.match(k)
        if m:
            entries.setdefault(int(m.group(1)), {})[m.group(2)] = list(s)
    if not entries:
        raise KeyError("encoder.downsamples.0.residual.2.weight")
    widths: List[int] = []
    res_per_stage: List[int] = []
    temporal: List[bool] = []
    attn: List[float] = []
    stage_width, stage_res = None, 0
    for i in range(max(entries) + 1):
        e = entries.get(i)
        if e is None:
            raise KeyError("encoder.downsamples.%d.*" % i)
        if "resample.1.weight" in e:
            widths.append(stage_width)
            res_per_stage.append(stage_res)
            temporal.append("time_conv.weight" in e)
            stage_width, stage_res = None, 0
        elif "residual.2.weight" in e:
            stage_width = e["residual.2.weight"][0]
            stage_res += 1
        elif "to_qkv.weight" in e:
            attn.append(1.0 / 2 ** len(widths))
        else:
            raise ValueError("encoder.downsamples.%d is neither a residual block, an attention block nor a "
                             "resample: %s" % (i, sorted(e)))
    widths.append(stage_width)
    res_per_stage.append(stage_res)
    if None in widths or len(set(res_per_stage)) != 1:
        raise ValueError("irregular encoder stages (widths %s, residual blocks %s)" % (widths, res_per_stage))
    if any(w % dim for w in widths):
        raise ValueError("stage widths %s are not multiples of the base width %d" % (widths, dim))
    return WanVAEConfig(dim=dim, z_dim=z_dim, dim_mult=tuple(w // dim for w in widths),
                        num_res_blocks=res_per_stage[0], attn_scales=tuple(sorted(set(attn), reverse=True)),
                        temperal_downsample=tuple(temporal))


def expected_shapes(cfg: WanVAEConfig) -> Dict[str, Tuple[int, ...]]:
    """Official key -> shape for a config (built on the meta device)."""
    import torch

    from .vae import WanVAE

    with torch.device("meta"):
        m = WanVAE(cfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}
