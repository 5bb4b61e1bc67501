"""The umT5 tokenizer, through ``tokenizers`` (``tokenizer.json``) or ``sentencepiece`` (``spiece.model``).

Sources, all giving the same ids for the same model:

* a tokenizer folder (``google/umt5-xxl/`` of the official layout, ``tokenizer/`` of a
  diffusers repo): ``tokenizer.json`` is read with ``tokenizers``, else ``spiece.model`` with
  ``sentencepiece``;
* the ``spiece_model`` uint8 tensor that ComfyUI embeds in its repackaged umT5 files
  (the raw bytes of a sentencepiece model).

Every sequence gets EOS (id 1) appended and is padded with id 0, as the official
``HuggingfaceTokenizer(..., padding="max_length", truncation=True)`` does.
:func:`build_demo_spiece` trains a tiny sentencepiece model on a built-in English text, for
small demo models in the real file format.
"""
from __future__ import annotations

import io
import json
import os
from typing import List, Sequence, Tuple, Union

import torch

from ..loading.tokenizer_folders import TokenizerError  # noqa: F401 (raised here, imported from here too)

PAD_ID = 0
EOS_ID = 1
UNK_ID = 2
TOKENIZER_FILES = ("tokenizer.json", "spiece.model")


class _SentencePieceBackend:
    def __init__(self, model_bytes: bytes):
        import sentencepiece

        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_proto=model_bytes)
        except Exception as e:
            raise TokenizerError("these bytes are not a sentencepiece model: %s" % e) from e

    def encode(self, text: str) -> List[int]:
        return list(self.sp.encode(text))

    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def piece(self, i: int) -> str:
        return self.sp.id_to_piece(i) if 0 <= i < self.sp.get_piece_size() else ""


class _TokenizersBackend:
    def __init__(self, tokenizer_json: str):
        from tokenizers import Tokenizer

        try:
            self.tok = Tokenizer.from_str(tokenizer_json)
        except Exception as e:
            raise TokenizerError("cannot read this tokenizer.json: %s" % e) from e
        self.tok.no_truncation()
        self.tok.no_padding()

    def encode(self, text: str) -> List[int]:
        return list(self.tok.encode(text, add_special_tokens=False).ids)

    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def piece(self, i: int) -> str:
        return self.tok.id_to_token(i) or ""


class UMT5Tokenizer:
    """Text -> token ids for umT5.  ``tokenizer(texts, length)`` -> (ids, mask), both [B, length] int64."""

    def __init__(self, backend, source: str):
        self._backend = backend
        self.source = source  # where it came from, for messages
        self.pad_id = PAD_ID
        self.eos_id = EOS_ID

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_spiece_bytes(cls, model_bytes: bytes, source: str = "<sentencepiece bytes>") -> "UMT5Tokenizer":
        return cls(_SentencePieceBackend(bytes(model_bytes)), source)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, source: str = "embedded spiece_model") -> "UMT5Tokenizer":
        """From ComfyUI's ``spiece_model`` tensor (uint8 bytes of a sentencepiece model)."""
        if tensor.dtype not in (torch.uint8, torch.int8) or tensor.dim() != 1:
            raise TokenizerError("%s should be a 1-D uint8 tensor of sentencepiece bytes, found %s %s"
                                 % (source, tensor.dtype, list(tensor.shape)))
        return cls.from_spiece_bytes(tensor.cpu().contiguous().numpy().tobytes(), source)

    @classmethod
    def from_file(cls, path: str) -> "UMT5Tokenizer":
        """From a ``tokenizer.json`` or a sentencepiece ``*.model`` file."""
        if path.lower().endswith(".json"):
            with open(path, encoding="utf-8") as f:
                return cls(_TokenizersBackend(f.read()), path)
        with open(path, "rb") as f:
            return cls.from_spiece_bytes(f.read(), path)

    @classmethod
    def from_folder(cls, folder: str) -> "UMT5Tokenizer":
        """From a tokenizer folder: ``tokenizer.json`` first, else ``spiece.model``."""
        for name in TOKENIZER_FILES:
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                return cls.from_file(p)
        raise TokenizerError("%s holds no tokenizer: expected tokenizer.json or spiece.model (the files of "
                             "google/umt5-xxl)" % folder)

    @classmethod
    def load(cls, path: str) -> "UMT5Tokenizer":
        """From a file or a folder."""
        path = os.path.expanduser(path)
        if os.path.isdir(path):
            return cls.from_folder(path)
        if os.path.isfile(path):
            return cls.from_file(path)
        raise TokenizerError("tokenizer path %s does not exist" % path)

    # ------------------------------------------------------------------ use

    @property
    def vocab_size(self) -> int:
        return self._backend.vocab_size()

    def is_umt5_like(self) -> bool:
        """True when ids 0 and 1 are ``<pad>`` and ``</s>``, as in umT5 (XLM-R, say, has them elsewhere)."""
        return self._backend.piece(PAD_ID) == "<pad>" and self._backend.piece(EOS_ID) == "</s>"

    def encode(self, text: str) -> List[int]:
        """Token ids of one (already cleaned) text, without EOS."""
        return self._backend.encode(text)

    def __call__(self, texts: Union[str, Sequence[str]], length: int = 512) -> Tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask), each [B, length] int64: ids + EOS, truncated to ``length`` (EOS kept), padded with 0."""
        if isinstance(texts, str):
            texts = [texts]
        if length < 1:
            raise ValueError("length must be at least 1 (room for EOS), got %d" % length)
        ids = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), length), dtype=torch.long)
        for i, text in enumerate(texts):
            seq = self.encode(text)[: length - 1] + [self.eos_id]
            ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[i, : len(seq)] = 1
        return ids, mask


# --------------------------------------------------------------------------- demo model

DEMO_TEXT = """\
A red fox runs across a snowy field at sunrise, its breath visible in the cold air.
The camera glides over a calm lake where two swans drift between tall green reeds.
An old fisherman mends his net on a wooden pier while small waves lap at the posts.
A young girl in a yellow raincoat jumps into a puddle and laughs as the water splashes.
Thick fog rolls through a pine forest, and beams of light break between the trees.
A busy night market glows with lanterns; cooks fry noodles over roaring flames.
Slow motion shot of a hummingbird hovering beside a bright purple flower.
A lone astronaut walks on a grey dusty plain under a black sky full of stars.
Ocean waves crash against black volcanic rocks, throwing white spray into the wind.
A chef slices fresh vegetables on a cutting board in a sunny kitchen.
A vintage train crosses a stone bridge high above a deep river valley.
Two children fly a kite on a windy hill while clouds race across the sky.
A cat stretches lazily on a windowsill as rain streams down the glass.
Close-up of a potter shaping wet clay on a spinning wheel with steady hands.
A city street at dusk, with cars leaving long trails of red and white light.
A dancer spins on an empty stage lit by a single warm spotlight.
Golden wheat sways in the breeze as a tractor moves slowly along the horizon.
A waterfall pours into a turquoise pool surrounded by mossy boulders and ferns.
An elderly couple shares tea on a porch, watching the sun set behind the mountains.
A surfer rides a huge wave, carving a bright line through the blue water.
Snowflakes fall softly on a quiet village with smoke rising from every chimney.
A robot arm assembles tiny parts on a factory line with precise quick movements.
Horses gallop across an open plain, kicking up clouds of dust behind them.
A street musician plays the violin while people drop coins into an open case.
Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images.
Worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers.
Poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers.
Still picture, messy background, three legs, many people in the background, walking backwards.
"""


def build_demo_spiece(vocab_size: int = 256) -> bytes:
    """Bytes of a tiny unigram sentencepiece model trained on :data:`DEMO_TEXT`.

    Special ids as in umT5: 0 = ``<pad>``, 1 = ``</s>``, 2 = ``<unk>``, no BOS.  Training is
    single-threaded and unshuffled, so the bytes are the same on every run.  The built-in text
    supports about 300 pieces; a larger ``vocab_size`` gives as many as the text allows
    (the model's embedding may be larger than the tokenizer, as in the real umT5).
    """
    import sentencepiece

    lines = [line for line in DEMO_TEXT.splitlines() if line.strip()]
    out = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=out, vocab_size=int(vocab_size),
            model_type="unigram", pad_id=PAD_ID, eos_id=EOS_ID, unk_id=UNK_ID, bos_id=-1,
            character_coverage=1.0, hard_vocab_limit=False, num_threads=1,
            shuffle_input_sentence=False, minloglevel=2)
    except RuntimeError as e:
        raise ValueError("cannot train a demo tokenizer with vocab_size %d: %s" % (vocab_size, e)) from e
    return out.getvalue()


# --------------------------------------------------------------------------- tokenizer.json


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message, top level only."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise TokenizerError("unsupported protobuf wire type %d in a sentencepiece model" % wire)
        yield field, wire, value


def _normalizer_spec(model_bytes: bytes) -> dict:
    """precompiled_charsmap and the whitespace switches of a sentencepiece ModelProto."""
    spec = {"charsmap": b"", "add_dummy_prefix": True}
    for field, _, value in _proto_fields(model_bytes):
        if field == 3:  # ModelProto.normalizer_spec
            for f, _, v in _proto_fields(value):
                if f == 2:
                    spec["charsmap"] = bytes(v)
                elif f == 3:
                    spec["add_dummy_prefix"] = bool(v)
    return spec


def spiece_to_tokenizer_json(model_bytes: bytes) -> str:
    """A ``tokenizer.json`` (for ``tokenizers``) equivalent to a unigram sentencepiece model.

    Built the way the T5 fast tokenizers are: the sentencepiece normalisation table, split on
    whitespace, "▁" prepended to each word, unigram model over the same pieces and scores.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    sp = _SentencePieceBackend(bytes(model_bytes)).sp
    vocab = [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(sp.get_piece_size())]
    byte_fallback = any(sp.is_byte(i) for i in range(sp.get_piece_size()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=byte_fallback))
    spec = _normalizer_spec(bytes(model_bytes))
    if spec["charsmap"]:
        tok.normalizer = normalizers.Precompiled(spec["charsmap"])
    scheme = "always" if spec["add_dummy_prefix"] else "never"
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)
    specials = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)]
    tok.add_special_tokens([AddedToken(s, special=True) for s in specials])
    return json.dumps(json.loads(tok.to_str()), ensure_ascii=False, indent=1)
