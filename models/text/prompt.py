"""From prompt text to the [B, 512, dim] context the DiT cross-attends to.

As the official pipeline (``HuggingfaceTokenizer(seq_len=512, clean="whitespace")`` followed by
``T5EncoderModel.encode``):

1. clean: ``ftfy.fix_text``, HTML-unescape twice, strip, collapse runs of whitespace to one
   space;
2. tokenise, append EOS, truncate to 512 tokens (EOS kept), pad with id 0;
3. encode with padded keys masked out of attention;
4. multiply by the mask so padded rows are exactly zero; the length stays 512.

Padding keys are masked, so the encoder is run only up to the longest real sequence of the
batch and the result is zero-padded back to 512: the same numbers for less work.  Also holds
the default negative prompts of the SkyReels-V2 scripts.
"""
from __future__ import annotations

import html
import re
from typing import Sequence, Union

import torch

TEXT_LEN = 512

# SkyReels-V2 generate_video.py (T2V / I2V); also SkyReels-A2's default and V3 A2V's sample_neg_prompt.
NEGATIVE_PROMPT_V2 = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)

# SkyReels-V2 generate_video_df.py (diffusion forcing): the Wan default negative prompt, in Chinese.
NEGATIVE_PROMPT_V2_DF = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

DEFAULT_NEGATIVE_PROMPTS = {
    "t2v": NEGATIVE_PROMPT_V2,
    "i2v": NEGATIVE_PROMPT_V2,
    "df": NEGATIVE_PROMPT_V2_DF,
    "none": "",
}

# Unicode White_Space, which is what ``\s`` means in the ``regex`` module the official code uses
# (Python's ``re`` would also match the four ASCII separators U+001C..U+001F).
_WHITESPACE = re.compile("[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def default_negative_prompt(variant: str) -> str:
    """The official default negative prompt for "t2v", "i2v", "df" (or "" for "none")."""
    if variant not in DEFAULT_NEGATIVE_PROMPTS:
        raise ValueError("unknown variant %r; choose one of %s" % (variant, ", ".join(DEFAULT_NEGATIVE_PROMPTS)))
    return DEFAULT_NEGATIVE_PROMPTS[variant]


_warned_ftfy = False


def _fix_text(text: str) -> str:
    """ftfy's repair of mis-decoded text (mojibake), as the official pipeline; without ftfy
    installed the text is kept as it is (ordinary prompts are unaffected) and we say so once."""
    global _warned_ftfy
    try:
        import ftfy
    except ImportError:
        if not _warned_ftfy:
            from ...host import log

            log("ftfy is not installed (pip install -r requirements.txt); prompts are cleaned without it")
            _warned_ftfy = True
        return text
    return ftfy.fix_text(text)


def clean_prompt(text: str) -> str:
    """Official cleaning: ftfy, HTML-unescape twice, strip, collapse whitespace."""
    if not isinstance(text, str):
        raise TypeError("a prompt must be a string, got %s" % type(text).__name__)
    text = _fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE.sub(" ", text).strip()


def tokenize_prompts(tokenizer, prompts: Union[str, Sequence[str]], text_len: int = TEXT_LEN,
                     clean: bool = True):
    """(ids, mask), each [B, text_len] int64, for cleaned prompts."""
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts given")
    texts = [clean_prompt(p) if clean else p for p in prompts]
    return tokenizer(texts, text_len)


@torch.no_grad()
def encode_token_ids(model, ids: torch.Tensor, mask: torch.Tensor, device=None, trim: bool = True) -> torch.Tensor:
    """Context [B, L, dim] float32: the encoder output times the mask (padded rows exactly zero).

    ``device`` is where the work runs (default: where the model's weights are).  With
    ``trim`` the encoder runs only up to the last real token of the batch; padded keys are
    masked, so the result is the same as running all L positions.
    """
    if ids.shape != mask.shape or ids.dim() != 2:
        raise ValueError("ids and mask must both be [batch, length]; got %s and %s"
                         % (list(ids.shape), list(mask.shape)))
    device = torch.device(device) if device is not None else model.device
    B, L = ids.shape
    mask = mask.to(torch.long)
    used = L
    if trim:
        real = mask.any(dim=0).nonzero()
        used = int(real.max()) + 1 if real.numel() else 1
    hidden = model(ids[:, :used].to(device), mask[:, :used].to(device))
    context = hidden * mask[:, :used, None].to(hidden)
    if used < L:
        context = torch.cat([context, context.new_zeros(B, L - used, context.shape[-1])], dim=1)
    return context.float()


def encode_prompts(model, tokenizer, prompts: Union[str, Sequence[str]], text_len: int = TEXT_LEN,
                   device=None, clean: bool = True) -> torch.Tensor:
    """[B, text_len, dim] float32 context for a list of prompts; padded rows are exactly zero."""
    ids, mask = tokenize_prompts(tokenizer, prompts, text_len, clean)
    return encode_token_ids(model, ids, mask, device=device)
