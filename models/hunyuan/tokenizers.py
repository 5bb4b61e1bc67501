"""The two tokenizers of SkyReels-V1: Llama-3 (llava-llama-3-8b) and CLIP-L, through ``tokenizers``.

Where they come from, nearest first:

* a folder given by the user;
* a tokenizer folder beside the weights (or one or two levels up, as in a diffusers pipeline:
  ``tokenizer/`` for Llama, ``tokenizer_2/`` for CLIP; or the weights' own folder when it
  holds ``tokenizer.json``, as Kijai's ``llava-llama-3-8b-text-encoder-tokenizer`` does);
* inside ComfyUI, the copies ComfyUI ships for its own HunyuanVideo text encoder
  (``comfy/text_encoders/llama_tokenizer`` and ``comfy/sd1_tokenizer``), so the Comfy-Org
  files need nothing else.

A folder only counts for the tokenizer it really holds: Llama's ``tokenizer.json`` has
``<|begin_of_text|>``, CLIP's ``vocab.json`` + ``merges.txt`` have ``<|startoftext|>``.
:func:`write_demo_llama_tokenizer` / :func:`write_demo_clip_tokenizer` train tiny ones of the
same structure for the demo models.
"""
from __future__ import annotations

import json
import os
from typing import Iterable, List, Optional, Sequence

LLAMA_FOLDERS = ("llama_tokenizer", "llava_llama3_tokenizer", "tokenizer", "")
CLIP_FOLDERS = ("clip_l_tokenizer", "sd1_tokenizer", "clip_tokenizer", "tokenizer_2", "tokenizer", "")
BOS, EOT, HEADER_START, HEADER_END = "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"
CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"
CLIP_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


class TokenizerError(ValueError):
    """No usable tokenizer; the message says where we looked and what to put there."""


# --------------------------------------------------------------------------- Llama-3


class LlamaTokenizer:
    """A ``tokenizer.json`` of the Llama-3 family; BOS is added here, never by the file."""

    def __init__(self, path: str):
        from tokenizers import Tokenizer

        self.source = path
        try:
            self.tok = Tokenizer.from_file(path)
        except Exception as e:
            raise TokenizerError("cannot read %s as a tokenizer.json: %s" % (path, e)) from e
        self.bos_id = self.tok.token_to_id(BOS)
        if self.bos_id is None or self.tok.token_to_id(EOT) is None:
            raise TokenizerError("%s is not a Llama-3 tokenizer (no %s / %s token)" % (path, BOS, EOT))
        pad = self.tok.token_to_id("<pad>")
        self.pad_id = pad if pad is not None else self.tok.token_to_id(EOT)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> List[int]:
        """BOS + the ids of ``text`` (special tokens written in it are recognised)."""
        return [self.bos_id] + list(self.tok.encode(text, add_special_tokens=False).ids)


def is_llama_folder(folder: str) -> bool:
    p = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(p):
        return False
    try:
        with open(p, encoding="utf-8") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return BOS in head


# --------------------------------------------------------------------------- CLIP


class CLIPTokenizer:
    """The CLIP BPE from ``vocab.json`` + ``merges.txt``: lower-cased, words ending in ``</w>``,
    ``<|startoftext|>`` ... ``<|endoftext|>``, padded with ``<|endoftext|>`` to 77."""

    def __init__(self, folder: str):
        from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
        from tokenizers.models import BPE

        self.source = folder
        vocab_path, merges_path = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
        try:
            with open(vocab_path, encoding="utf-8") as f:
                vocab = json.load(f)
            with open(merges_path, encoding="utf-8") as f:
                lines = [ln.rstrip("\n") for ln in f]
        except (OSError, ValueError) as e:
            raise TokenizerError("cannot read the CLIP tokenizer in %s: %s" % (folder, e)) from e
        merges = [tuple(ln.split(" ")) for ln in lines if ln and not ln.startswith("#version") and " " in ln]
        if CLIP_BOS not in vocab or CLIP_EOS not in vocab:
            raise TokenizerError("%s is not a CLIP tokenizer (no %s / %s)" % (folder, CLIP_BOS, CLIP_EOS))
        tok = Tokenizer(BPE(vocab, merges, continuing_subword_prefix="", end_of_word_suffix="</w>",
                            fuse_unk=False, unk_token=CLIP_EOS))
        tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                               normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False)])
        tok.decoder = decoders.ByteLevel()
        self.tok = tok
        self.bos_id, self.eos_id = vocab[CLIP_BOS], vocab[CLIP_EOS]
        self.size = len(vocab)

    @property
    def vocab_size(self) -> int:
        return self.size

    def encode(self, text: str, length: int = 77) -> List[int]:
        """[BOS, tokens, EOS] cut to ``length`` (EOS kept last) and padded with EOS."""
        body = list(self.tok.encode(text.strip(), add_special_tokens=False).ids)[: length - 2]
        ids = [self.bos_id] + body + [self.eos_id]
        return ids + [self.eos_id] * (length - len(ids))


def is_clip_folder(folder: str) -> bool:
    p = os.path.join(folder, "vocab.json")
    if not (os.path.isfile(p) and os.path.isfile(os.path.join(folder, "merges.txt"))):
        return False
    try:
        with open(p, encoding="utf-8") as f:
            return CLIP_BOS in json.load(f)
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- finding them


def candidates(weights_path: Optional[str], names: Sequence[str], stem_names: Iterable[str] = ()) -> List[str]:
    """Folders searched beside the weights and one and two levels up (a pipeline's root)."""
    out: List[str] = []
    if weights_path:
        start = os.path.abspath(weights_path)
        level = start if os.path.isdir(start) else os.path.dirname(start)
        extra = list(stem_names)
        for _ in range(3):
            for sub in list(extra) + list(names):
                out.append(os.path.join(level, sub) if sub else level)
            parent = os.path.dirname(level)
            if parent == level:
                break
            level = parent
    return out


def _comfy_folder(*parts: str) -> Optional[str]:
    from ...host import comfy_package_dir

    root = comfy_package_dir()
    return os.path.join(root, *parts) if root else None


def _stems(weights_path: Optional[str]) -> List[str]:
    if not weights_path or os.path.isdir(weights_path):
        return []
    stem = os.path.splitext(os.path.basename(weights_path))[0]
    return [stem + "_tokenizer", stem + "-tokenizer"]


def find_llama_tokenizer(weights_path: Optional[str], tokenizer_path: Optional[str] = None) -> LlamaTokenizer:
    if tokenizer_path:
        p = tokenizer_path if os.path.isfile(tokenizer_path) else os.path.join(tokenizer_path, "tokenizer.json")
        return LlamaTokenizer(p)
    looked = []
    places = candidates(weights_path, LLAMA_FOLDERS, _stems(weights_path))
    comfy = _comfy_folder("text_encoders", "llama_tokenizer")
    if comfy:
        places.append(comfy)
    for folder in places:
        if is_llama_folder(folder):
            return LlamaTokenizer(os.path.join(folder, "tokenizer.json"))
        looked.append(folder)
    raise TokenizerError(
        "no Llama-3 tokenizer found for %s. Looked in: %s. Put the tokenizer.json of "
        "hunyuanvideo-community/HunyuanVideo (tokenizer/) in a folder named 'llama_tokenizer' beside the text "
        "encoder file, or give its folder in tokenizer_path." % (weights_path or "the given weights",
                                                                 ", ".join(looked[:6]) or "nowhere"))


def find_clip_tokenizer(weights_path: Optional[str], tokenizer_path: Optional[str] = None) -> CLIPTokenizer:
    if tokenizer_path:
        return CLIPTokenizer(tokenizer_path if os.path.isdir(tokenizer_path) else os.path.dirname(tokenizer_path))
    looked = []
    places = candidates(weights_path, CLIP_FOLDERS, _stems(weights_path))
    comfy = _comfy_folder("sd1_tokenizer")
    if comfy:
        places.append(comfy)
    for folder in places:
        if is_clip_folder(folder):
            return CLIPTokenizer(folder)
        looked.append(folder)
    raise TokenizerError(
        "no CLIP tokenizer (vocab.json + merges.txt) found for %s. Looked in: %s. Put the files of "
        "openai/clip-vit-large-patch14 (or a pipeline's tokenizer_2/) in a folder named 'clip_l_tokenizer' beside "
        "clip_l.safetensors, or give its folder in tokenizer_path." % (weights_path or "the given weights",
                                                                     ", ".join(looked[:6]) or "nowhere"))


# --------------------------------------------------------------------------- demo tokenizers

_DEMO_TEXT = (
    "describe the video by detailing the following aspects the main content and theme of the video "
    "the color shape size texture quantity text and spatial relationships of the objects actions events "
    "behaviors temporal relationships physical movement changes of the objects background environment light "
    "style and atmosphere camera angles movements and transitions used in the video a woman walks through a "
    "city at night aerial view overexposed low quality deformation a poor composition bad hands bad teeth bad "
    "eyes bad limbs distortion fps 24 a 3d model of a house a cat on the grass realistic style "
    "0 1 2 3 4 5 6 7 8 9 , . : ! ? - ' ( )"
)


def write_demo_llama_tokenizer(folder: str, vocab_size: int = 300) -> int:
    """A tiny byte-level BPE with the Llama-3 special tokens at the end; returns its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([_DEMO_TEXT] * 4, trainer)
    tok.add_special_tokens([BOS, "<|end_of_text|>", HEADER_START, HEADER_END, EOT, "<pad>"])
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": BOS, "eos_token": EOT, "pad_token": "<pad>", "padding_side": "right",
                   "note": "demo tokenizer: random-weight models only"}, f, indent=1)
    return tok.get_vocab_size(with_added_tokens=True)


def write_demo_clip_tokenizer(folder: str, vocab_size: int = 300) -> int:
    """A tiny CLIP-style BPE (``</w>`` word ends, lower case) with <|startoftext|> and
    <|endoftext|> as the two largest ids; returns its size."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 2, initial_alphabet=alphabet, end_of_word_suffix="</w>",
                                  show_progress=False)
    tok.train_from_iterator([_DEMO_TEXT] * 4, trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = dict(model["vocab"])
    # every byte also as a word end, so any text can be written
    for ch in alphabet:
        vocab.setdefault(ch + "</w>", len(vocab))
    vocab[CLIP_BOS] = len(vocab)
    vocab[CLIP_EOS] = len(vocab)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(vocab)
