"""From any audio to the talking-avatar features: mono, 16 kHz, -23 LUFS, wav2vec2 at 25 fps.

The official front end (``avatar_preprocess``): ``librosa.load(path, sr=16000)`` (mono,
soxr resampling), loudness normalisation (:mod:`.loudness`), then the wav2vec2 features of
:meth:`.wav2vec2.AudioEncoder.features`.  Here the audio may come from a file or from a
ComfyUI AUDIO (any rate, any channels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .loudness import normalize_loudness
from .wav2vec2 import FPS, SAMPLE_RATE, AudioEncoder


def _librosa():
    try:
        import librosa
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("resampling audio needs librosa: pip install librosa") from e
    return librosa


def to_mono_16k(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[channels, samples] or [samples] at any rate -> mono float32 [N] at 16 kHz
    (channels averaged, then librosa's soxr_hq resampling, as ``librosa.load(sr=16000)``)."""
    w = waveform.detach().float().cpu()
    if w.dim() == 2:
        w = w.mean(dim=0)
    if w.dim() != 1:
        raise ValueError("expected a waveform [channels, samples], got %s" % list(waveform.shape))
    if int(sample_rate) == SAMPLE_RATE:
        return w.contiguous()
    y = _librosa().resample(w.numpy(), orig_sr=int(sample_rate), target_sr=SAMPLE_RATE)
    return torch.from_numpy(y).float().contiguous()


@dataclass
class AudioFeatures:
    """What the audio encode node hands to the talking-avatar sampler."""

    features: torch.Tensor        # float32 [frames, layers, hidden] on the CPU, one per video frame
    fps: int                      # video frames per second the features are made for (25)
    seconds: float                # length of the audio they come from
    audio: Optional[dict] = None  # that audio (ComfyUI AUDIO, original rate), for the saved video
    loudness: Optional[float] = None
    normalized: bool = False      # True when the loudness was brought to -23 LUFS

    @property
    def frames(self) -> int:
        return int(self.features.shape[0])


def encode_waveform(encoder: AudioEncoder, waveform16k: torch.Tensor, loudness_norm: bool = True,
                    fps: int = FPS) -> AudioFeatures:
    """Features of a mono 16 kHz waveform [N] (loudness-normalised first unless told not to)."""
    loud = None
    normalized = False
    if loudness_norm:
        res = normalize_loudness(waveform16k, SAMPLE_RATE)
        waveform16k, loud, normalized = res.waveform, res.loudness, not res.skipped
    feats = encoder.features(waveform16k, fps=fps)
    return AudioFeatures(feats, fps, waveform16k.shape[0] / SAMPLE_RATE, None, loud, normalized)
