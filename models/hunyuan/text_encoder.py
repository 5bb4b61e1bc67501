"""The SkyReels-V1 text path: llava-llama-3-8b hidden states and CLIP-L pooled text.

As the official ``SkyreelsVideoPipeline.encode_prompt`` (diffusers' HunyuanVideo prompt code):

* Llama: the prompt goes into HunyuanVideo's template (a system turn asking to describe the
  video, then a user turn with the prompt, closed by ``<|eot_id|>``), is tokenised with BOS,
  at most 256 + 95 tokens; the state taken is ``hidden_states[-3]``, the output of decoder
  layer N−2 without the final norm; the first 95 rows (BOS + the template up to the prompt)
  are cropped, which leaves the prompt's tokens and ``<|eot_id|>``.
* CLIP-L: the raw prompt (no template), BOS … EOS padded with EOS to 77, no attention mask;
  the pooled vector is the final-LayerNorm state at the first EOS.

The models are transformers' ``LlamaModel`` and ``CLIPTextModel``, built on the meta device
and filled one tensor at a time.  Only the first N−2 Llama layers are built (the last two and
the final norm never influence the result, so their ~0.9 GB are not even read).  Every
Linear is our per-layer-cast ``ops.Linear``, so fp8 files (Comfy-Org's
``llava_llama3_fp8_scaled``, scales included) stay fp8 in memory and are upcast one layer at
a time.

We run each prompt on its own, unpadded (right padding never changes the valid rows of a
causal model), and return only the valid rows, exactly what ComfyUI's own HunyuanVideo text
encoder returns; :meth:`LlamaEncoder.encode_ids` is the official padded batch path.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn

from ..common import ops
from ..common.ops import default_compute_dtype
from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy

PROMPT_TEMPLATE = (
    "<|start_header_id|>system<|end_header_id|>\n\nDescribe the video by detailing the following aspects: "
    "1. The main content and theme of the video.2. The color, shape, size, texture, quantity, text, and spatial "
    "relationships of the objects.3. Actions, events, behaviors temporal relationships, physical movement changes "
    "of the objects.4. background environment, light, style and atmosphere.5. camera angles, movements, and "
    "transitions used in the video:<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>")
CROP_START = 95              # BOS + the template before the prompt, with the Llama-3 tokenizer
MAX_TEXT_TOKENS = 256
LAYERS_SKIPPED = 2           # clip_skip 2: hidden_states[-3]
CLIP_LENGTH = 77
NEGATIVE_PROMPT = ("Aerial view, aerial view, overexposed, low quality, deformation, a poor composition, bad hands, "
                   "bad teeth, bad eyes, bad limbs, distortion")
FPS_PREFIX = "FPS-24, "

_FPS_RE = re.compile(r"^\s*FPS-\d+\s*,")


def with_fps_prefix(prompt: str, fps: int = 24) -> str:
    """The prompt starting with "FPS-24, " (the SkyReels-V1 training format), unless it already
    starts with an FPS-n prefix."""
    if _FPS_RE.match(prompt):
        return prompt
    return "FPS-%d, %s" % (int(round(fps)), prompt.lstrip())


def _swap_linears(module: nn.Module) -> nn.Module:
    """Every plain nn.Linear becomes our ops.Linear (same parameters, cast per call)."""
    for m in module.modules():
        if type(m) is nn.Linear:
            m.__class__ = ops.Linear
    return module


def _count(shapes: Mapping[str, Sequence[int]], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in shapes for m in [rx.match(k)] if m})


# --------------------------------------------------------------------------- Llama

LLAMA_PREFIXES = ("", "model.", "language_model.model.", "model.language_model.", "text_encoder.",
                  "text_encoders.llama.transformer.model.")
_LLAMA_FP8 = re.compile(r"^layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$")


def llama_fp8_eligible(key: str) -> bool:
    return bool(_LLAMA_FP8.match(key))


def llama_prefix(keys) -> Optional[str]:
    keys = set(keys)
    for k in keys:
        if k.endswith("layers.0.self_attn.q_proj.weight"):
            p = k[: -len("layers.0.self_attn.q_proj.weight")]
            if p in LLAMA_PREFIXES and p + "embed_tokens.weight" in keys:
                return p
    return None


def llama_config(shapes: Mapping[str, Sequence[int]], file_config: Optional[dict] = None):
    """A transformers LlamaConfig from the shapes (head size 128, Llama-3 RoPE and norm
    constants) or from a config.json that agrees with them."""
    from transformers import LlamaConfig

    V, D = shapes["embed_tokens.weight"]
    fc = dict(file_config or {})
    fc = fc.get("text_config", fc)
    if fc.get("hidden_size") == D and fc.get("vocab_size", V) == V:
        head_dim = int(fc.get("head_dim") or D // int(fc["num_attention_heads"]))
        theta = float(fc.get("rope_theta") or (fc.get("rope_parameters") or {}).get("rope_theta") or 500000.0)
        eps = float(fc.get("rms_norm_eps", 1e-5))
    else:
        head_dim, theta, eps = 128, 500000.0, 1e-5
    q = shapes["layers.0.self_attn.q_proj.weight"][0]
    k = shapes["layers.0.self_attn.k_proj.weight"][0]
    return LlamaConfig(
        vocab_size=int(V), hidden_size=int(D), intermediate_size=int(shapes["layers.0.mlp.gate_proj.weight"][0]),
        num_hidden_layers=_count(shapes, r"^layers\.(\d+)\."), num_attention_heads=int(q // head_dim),
        num_key_value_heads=int(k // head_dim), head_dim=int(head_dim), rope_theta=theta, rms_norm_eps=eps,
        max_position_embeddings=8192, attention_bias="layers.0.self_attn.q_proj.bias" in shapes, mlp_bias=False,
        tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=None)


def truncated_config(cfg, keep: int):
    built = copy.deepcopy(cfg)
    built.num_hidden_layers = keep
    built._attn_implementation = "sdpa"
    return built


def build_llama(built) -> nn.Module:
    """LlamaModel with ``built.num_hidden_layers`` layers, no final norm, our Linear layers."""
    from transformers import LlamaModel

    m = LlamaModel(built)
    m.norm = nn.Identity()
    return _swap_linears(m)


def make_streamable(model: nn.Module) -> nn.Module:
    """Give a transformers LlamaModel the :mod:`memory.streamable` protocol, so a VRAM budget can
    stream its decoder layers like DiT blocks: the layers are the blocks, forward hooks call
    ``model.block_hooks`` around each one."""
    layers = list(model.layers)
    model.block_hooks = None
    model.streamable_blocks = lambda: layers

    def activation_bytes(latent_shape=None, batch=1, compute_dtype=torch.bfloat16, teacache=False,
                         tokens=CROP_START + MAX_TEXT_TOKENS):
        cfg = model.config
        c = torch.empty((), dtype=compute_dtype).element_size()
        return int(batch * tokens * (8 * cfg.hidden_size + 3 * cfg.intermediate_size) * c * 1.5)

    model.activation_bytes = activation_bytes

    def before(i):
        def hook(module, args):
            if model.block_hooks is not None:
                model.block_hooks.before_block(i, module)
            return None
        return hook

    def after(i):
        def hook(module, args, output):
            if model.block_hooks is not None:
                model.block_hooks.after_block(i, module)
            return None
        return hook

    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(before(i))
        layer.register_forward_hook(after(i))
    return model


def llama_key_map(prefix: str, keep: int):
    """file key -> model key: the embedding and the first ``keep`` layers; everything else
    (the last layers, the final norm, an lm_head, a vision tower) is not read."""
    layer_rx = re.compile(r"^layers\.(\d+)\.")

    def to_model(k: str) -> Optional[str]:
        if not k.startswith(prefix):
            return None
        rest = k[len(prefix):]
        m = layer_rx.match(rest)
        if m:
            return rest if int(m.group(1)) < keep else None
        return rest if rest == "embed_tokens.weight" else None

    return to_model


class LlamaEncoder:
    """The first N−2 layers of a LlamaModel (no final norm), with its tokenizer."""

    def __init__(self, model: nn.Module, config, tokenizer=None, compute_dtype: torch.dtype = torch.float32):
        self.model = model
        self.config = config
        self.tokenizer = tokenizer
        self.compute_dtype = compute_dtype

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @torch.no_grad()
    def states(self, ids: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ids [B, L] (and the attention mask [B, L]) -> hidden_states[-3] [B, L, D], float32."""
        dev = self.device
        ids = ids.to(dev)
        emb = self.model.embed_tokens(ids).to(self.compute_dtype)
        out = self.model(inputs_embeds=emb, attention_mask=None if mask is None else mask.to(dev),
                         use_cache=False)
        return out.last_hidden_state.float()

    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor, crop: int = CROP_START):
        """The official batch path: padded ids [B, 351] and mask -> (states [B, 256, D], mask [B, 256])."""
        return self.states(ids, mask)[:, crop:], mask[:, crop:]

    def _tok(self):
        if self.tokenizer is None:
            raise ValueError("this Llama encoder has no tokenizer; load it with a tokenizer folder")
        return self.tokenizer

    def template_length(self) -> int:
        """BOS + the template before the prompt, in tokens (95 with the Llama-3 tokenizer)."""
        return len(self._tok().encode(PROMPT_TEMPLATE.split("{}")[0]))

    def encode(self, prompt: str) -> torch.Tensor:
        """One prompt -> its valid rows [1, n, D] float32 on the CPU (prompt tokens + <|eot_id|>)."""
        tok = self._tok()
        crop = self.template_length()
        ids = tok.encode(PROMPT_TEMPLATE.format(prompt))[: crop + MAX_TEXT_TOKENS]
        if len(ids) <= crop:
            raise ValueError("the prompt was lost to truncation")
        return self.states(torch.tensor([ids]))[:, crop:].cpu()


def load_llama_encoder(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, weight_dtype: str = "auto",
                       compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
                       tokenizer_path: Optional[str] = None, config=None, need_tokenizer: bool = True,
                       skip_layers: int = LAYERS_SKIPPED) -> LlamaEncoder:
    """Load llava-llama-3-8b (transformers or ComfyUI naming, fp16 / bf16 / fp8 / scaled fp8).

    Only the first N − ``skip_layers`` layers are built and read."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    device = torch.device(device)
    compute_dtype = compute_dtype or default_compute_dtype(device)
    source, file_config, where = open_weights(path, "llama")
    prefix = llama_prefix(source.keys())
    if prefix is None:
        raise CheckpointError(
            "%s is not a Llama text encoder: expected 'embed_tokens.weight' and 'layers.0.self_attn.q_proj.weight' "
            "(transformers, diffusers text_encoder/) or the same behind 'model.' (ComfyUI llava_llama3_*.safetensors); "
            "found e.g. %s" % (where or "the given weights", ", ".join(sorted(source.keys())[:4])))
    tokenizer = None
    if need_tokenizer:
        from .tokenizers import find_llama_tokenizer

        tokenizer = find_llama_tokenizer(where, tokenizer_path)  # fail early, before the big read
    full = {k[len(prefix):]: source.shape(k) for k in source.keys() if k.startswith(prefix)}
    try:
        cfg = config if config is not None else llama_config(full, file_config)
    except KeyError as e:
        raise CheckpointError("%s looks like a Llama text encoder but lacks %s" % (where, e)) from e
    keep = cfg.num_hidden_layers - skip_layers
    if keep < 1:
        raise CheckpointError("%s has %d layers; %d are needed" % (where, cfg.num_hidden_layers, skip_layers + 1))
    built = truncated_config(cfg, keep)
    policy = storage_policy(parse_weight_dtype(weight_dtype), compute_dtype, llama_fp8_eligible)
    model = build_and_fill(lambda: build_llama(built), source, llama_key_map(prefix, keep), "Llama text encoder",
                           policy, device)
    model.rotary_emb = LlamaRotaryEmbedding(config=built).to(device)  # its buffers are computed, not stored
    model.eval().requires_grad_(False)
    make_streamable(model)
    model.compute_dtype = compute_dtype
    if tokenizer is not None and tokenizer.vocab_size > cfg.vocab_size:
        raise CheckpointError("the tokenizer (%s) has %d tokens but the Llama embedding only %d rows; they do not "
                              "belong together" % (tokenizer.source, tokenizer.vocab_size, cfg.vocab_size))
    enc = LlamaEncoder(model, cfg, tokenizer, compute_dtype)
    enc.source_path = where
    return enc


# --------------------------------------------------------------------------- CLIP-L

CLIP_PREFIXES = ("", "clip_l.", "text_encoders.clip_l.transformer.", "cond_stage_model.transformer.",
                 "text_encoder_2.")
CLIP_MARK = "text_model.embeddings.token_embedding.weight"


def clip_prefix(keys) -> Optional[str]:
    for k in keys:
        if k.endswith(CLIP_MARK):
            p = k[: -len(CLIP_MARK)]
            if p in CLIP_PREFIXES:
                return p
    return None


def clip_config(shapes: Mapping[str, Sequence[int]], file_config: Optional[dict] = None):
    from transformers import CLIPTextConfig

    V, D = shapes["embeddings.token_embedding.weight"]
    fc = dict(file_config or {})
    fc = fc.get("text_config", fc)
    heads = int(fc["num_attention_heads"]) if fc.get("hidden_size") == D and "num_attention_heads" in fc \
        else max(1, int(D) // 64)
    return CLIPTextConfig(
        vocab_size=int(V), hidden_size=int(D), intermediate_size=int(shapes["encoder.layers.0.mlp.fc1.weight"][0]),
        num_hidden_layers=_count(shapes, r"^encoder\.layers\.(\d+)\."), num_attention_heads=heads,
        max_position_embeddings=int(shapes["embeddings.position_embedding.weight"][0]),
        hidden_act=fc.get("hidden_act", "quick_gelu"), layer_norm_eps=float(fc.get("layer_norm_eps", 1e-5)),
        bos_token_id=0, pad_token_id=1, eos_token_id=2)  # eos 2: the legacy argmax rule of the released config


def clip_key_map(prefix: str, cfg):
    """file key -> model key for CLIPTextModel (transformers 4 keeps the ``text_model.`` level
    inside the module, 5 drops it); ``text_projection`` / ``logit_scale`` are not read."""
    from transformers import CLIPTextModel

    head = prefix + "text_model."
    with torch.device("meta"):
        inner = "text_model." if any(k.startswith("text_model.") for k in CLIPTextModel(cfg).state_dict()) else ""

    def to_model(k: str) -> Optional[str]:
        return inner + k[len(head):] if k.startswith(head) and not k.endswith("position_ids") else None

    return to_model


def _clip_core(model: nn.Module) -> nn.Module:
    return getattr(model, "text_model", model)


class ClipEncoder:
    """CLIP-L text tower; ``pooled`` is the final-LayerNorm state at the first EOS."""

    def __init__(self, model: nn.Module, config, tokenizer=None, compute_dtype: torch.dtype = torch.float32):
        self.model = model
        self.config = config
        self.tokenizer = tokenizer
        self.compute_dtype = compute_dtype

    @property
    def device(self) -> torch.device:
        return _clip_core(self.model).embeddings.token_embedding.weight.device

    @torch.no_grad()
    def pooled(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids.to(self.device)).pooler_output.float()

    def encode(self, prompt: str) -> torch.Tensor:
        if self.tokenizer is None:
            raise ValueError("this CLIP encoder has no tokenizer; load it with a tokenizer folder")
        ids = self.tokenizer.encode(prompt, self.config.max_position_embeddings)
        return self.pooled(torch.tensor([ids])).cpu()


def load_clip_l(path: Union[str, Dict[str, torch.Tensor], TensorSource], *,
                compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
                tokenizer_path: Optional[str] = None, config=None, need_tokenizer: bool = True) -> ClipEncoder:
    """Load CLIP-L's text tower (``text_model.*``: Comfy-Org clip_l, diffusers text_encoder_2/),
    kept in the compute dtype (it is small)."""
    from transformers import CLIPTextModel

    device = torch.device(device)
    compute_dtype = compute_dtype or default_compute_dtype(device)
    source, file_config, where = open_weights(path, "clip_l")
    prefix = clip_prefix(source.keys())
    if prefix is None:
        raise CheckpointError("%s is not a CLIP text encoder: expected 'text_model.embeddings.token_embedding.weight' "
                              "(Comfy-Org clip_l.safetensors, diffusers text_encoder_2/); found e.g. %s"
                              % (where or "the given weights", ", ".join(sorted(source.keys())[:4])))
    tokenizer = None
    if need_tokenizer:
        from .tokenizers import find_clip_tokenizer

        tokenizer = find_clip_tokenizer(where, tokenizer_path)
    head = prefix + "text_model."
    shapes = {k[len(head):]: source.shape(k) for k in source.keys() if k.startswith(head)}
    try:
        cfg = config if config is not None else clip_config(shapes, file_config)
    except KeyError as e:
        raise CheckpointError("%s looks like a CLIP text encoder but lacks %s" % (where, e)) from e
    cfg._attn_implementation = "sdpa"
    model = build_and_fill(lambda: _swap_linears(CLIPTextModel(cfg)), source, clip_key_map(prefix, cfg),
                           "CLIP-L text encoder",
                           lambda key, dt: compute_dtype if dt.is_floating_point else dt, device)
    _clip_core(model).embeddings.register_buffer(
        "position_ids", torch.arange(cfg.max_position_embeddings, device=device).expand((1, -1)), persistent=False)
    model.eval().requires_grad_(False)
    if tokenizer is not None and tokenizer.vocab_size > cfg.vocab_size:
        raise CheckpointError("the CLIP tokenizer (%s) has %d tokens but the embedding only %d rows"
                              % (tokenizer.source, tokenizer.vocab_size, cfg.vocab_size))
    enc = ClipEncoder(model, cfg, tokenizer, compute_dtype)
    enc.source_path = where
    return enc


# --------------------------------------------------------------------------- both


@dataclass
class PromptEmbedding:
    """One prompt's conditioning: the valid Llama rows and the CLIP pooled vector."""

    text: torch.Tensor      # [1, n, 4096] float32
    pooled: torch.Tensor    # [1, 768] float32


class HunyuanTextEncoder:
    """Llama + CLIP-L: ``encode(prompts)`` -> one :class:`PromptEmbedding` per prompt."""

    def __init__(self, llama: LlamaEncoder, clip: ClipEncoder):
        self.llama = llama
        self.clip = clip

    def modules(self) -> List[nn.Module]:
        return [self.llama.model, self.clip.model]

    def encode(self, prompts: Sequence[str]) -> List[PromptEmbedding]:
        return [PromptEmbedding(self.llama.encode(p), self.clip.encode(p)) for p in prompts]
