"""Loudness normalisation of speech before the audio encoder (ITU-R BS.1770 via pyloudnorm).

The SkyReels-V3 talking-avatar front end measures the integrated loudness of the 16 kHz mono
waveform and scales it to -23 LUFS, unless the measurement is implausible (|loudness| > 100
LUFS: digital silence gives -inf, a nearly silent clip less than -100), in which case the
waveform is used as it is.  No clipping: values beyond [-1, 1] are kept.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

TARGET_LUFS = -23.0
IMPLAUSIBLE_LUFS = 100.0
MIN_SECONDS = 0.4  # one gating block: pyloudnorm cannot measure anything shorter


def _pyloudnorm():
    try:
        import pyloudnorm
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("loudness normalisation needs pyloudnorm: pip install pyloudnorm") from e
    return pyloudnorm


@dataclass
class LoudnessResult:
    waveform: torch.Tensor          # float32 [N]
    loudness: Optional[float]       # measured LUFS (None when it could not be measured)
    skipped: bool                   # True when the input came back unchanged


def measure_loudness(waveform: torch.Tensor, sample_rate: int) -> float:
    """Integrated loudness in LUFS of a mono waveform [N] (-inf for digital silence)."""
    meter = _pyloudnorm().Meter(int(sample_rate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(meter.integrated_loudness(waveform.detach().cpu().float().numpy()))


def normalize_loudness(waveform: torch.Tensor, sample_rate: int, target: float = TARGET_LUFS) -> LoudnessResult:
    """Scale a mono waveform [N] to ``target`` LUFS; see the module docstring for when it is skipped.
    Shorter than 0.4 s: returned unchanged (pyloudnorm needs one 0.4 s block)."""
    if waveform.dim() != 1:
        raise ValueError("expected a mono waveform [samples], got %s" % list(waveform.shape))
    if waveform.shape[0] < int(MIN_SECONDS * sample_rate):
        return LoudnessResult(waveform.float(), None, True)
    loudness = measure_loudness(waveform, sample_rate)
    if not np.isfinite(loudness) or abs(loudness) > IMPLAUSIBLE_LUFS:
        return LoudnessResult(waveform.float(), loudness if np.isfinite(loudness) else None, True)
    gain = np.power(10.0, (float(target) - loudness) / 20.0)  # float64, as pyloudnorm
    out = torch.from_numpy((gain * waveform.detach().cpu().double().numpy()).astype(np.float32))
    return LoudnessResult(out, loudness, False)
