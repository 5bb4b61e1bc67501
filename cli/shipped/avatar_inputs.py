"""The example inputs of the talking-avatar workflow: a drawn portrait and a synthetic voice.

Both are made here, so the pack ships no third-party media and no voice of a real person:

* the portrait is a simple head-and-shoulders drawing;
* the "speech" is a small source-filter synthesiser: a glottal pulse train with a falling
  intonation, shaped by the formants of five vowels, with fricative and plosive noise for
  consonants, syllable envelopes, word gaps and phrase pauses.  It says nothing, but it has the
  rhythm, pitch and spectrum of speech, which is what the audio encoder and the lip motion
  respond to.

8 s of audio = 200 video frames at 25 fps: the keyframe pass and 3 windows of 81 frames.
"""
from __future__ import annotations

import os

import numpy as np
import torch

PORTRAIT = "skyreels_example_portrait.png"
VOICE = "skyreels_example_voice.flac"
VOICE_SECONDS = 8.0
RATE = 16000

# (F1, F2, F3) in Hz of a few vowels
_VOWELS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (300, 2250, 3000), "o": (570, 840, 2410),
           "u": (320, 870, 2240)}
_BANDWIDTHS = (90, 110, 150)


def _resonate(x: np.ndarray, freq: float, bw: float, rate: int) -> np.ndarray:
    """Second-order resonator (a formant), unity gain at its peak."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bw / rate)
    theta = 2 * np.pi * freq / rate
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1 - r], a, x)


def _glottal(f0: np.ndarray, rate: int) -> np.ndarray:
    """Glottal flow derivative for a per-sample pitch track."""
    phase = np.cumsum(f0 / rate) % 1.0
    flow = np.where(phase < 0.6, np.sin(np.pi * phase / 0.6) ** 2, 0.0)
    return np.diff(flow, prepend=0.0)


def _envelope(n: int, attack: float, release: float, rate: int) -> np.ndarray:
    env = np.ones(n)
    a, r = min(n, max(1, int(attack * rate))), min(n, max(1, int(release * rate)))
    env[:a] = np.linspace(0, 1, a)
    env[-r:] = np.minimum(env[-r:], np.linspace(1, 0, r))
    return env


def synth_voice(seconds: float = VOICE_SECONDS, rate: int = RATE, seed: int = 7) -> np.ndarray:
    """A speech-like mono signal in [-0.5, 0.5], float32 [seconds * rate]."""
    rng = np.random.default_rng(seed)
    total = int(round(seconds * rate))
    out = np.zeros(total)
    t = 0.25  # a short silence first, as in a recording
    phrase_start = t
    while t < seconds - 0.4:
        phrase_len = rng.uniform(1.6, 2.6)
        while t < min(phrase_start + phrase_len, seconds - 0.4):
            for _ in range(rng.integers(1, 4)):  # syllables of a word
                kind = rng.choice(["s", "p", "n", ""], p=[0.25, 0.3, 0.2, 0.25])
                start = int(t * rate)
                if kind in ("s", "p"):  # unvoiced onset
                    dur = 0.07 if kind == "s" else 0.018
                    n = int(dur * rate)
                    noise = rng.standard_normal(n)
                    noise = _resonate(noise, 4500 if kind == "s" else 1800, 1500, rate)
                    out[start:start + n] += 0.25 * noise * _envelope(n, 0.005, 0.01, rate)
                    start += n
                vowel = _VOWELS["aeiou"[rng.integers(0, 5)]]
                dur = rng.uniform(0.11, 0.24)
                n = min(int(dur * rate), total - start)
                if n <= 0:
                    break
                progress = (start / rate - phrase_start) / phrase_len
                f0 = (185 - 45 * progress + 20 * rng.uniform(-1, 1)) * (1 + 0.04 * np.sin(np.linspace(0, np.pi, n)))
                src = _glottal(f0, rate) + 0.003 * rng.standard_normal(n)
                voiced = sum(_resonate(src, f, b, rate) * g for f, b, g in zip(vowel, _BANDWIDTHS, (1.0, 0.6, 0.3)))
                if kind == "n":  # a nasal murmur before the vowel
                    voiced[: n // 4] = _resonate(src[: n // 4], 250, 100, rate) * 0.8
                out[start:start + n] += voiced * _envelope(n, 0.015, 0.04, rate)
                t = (start + n) / rate
            t += rng.uniform(0.03, 0.09)  # gap between words
        t += rng.uniform(0.25, 0.45)  # pause between phrases
        phrase_start = t
    out /= np.abs(out).max() * 2.0
    return out.astype(np.float32)


def portrait(width: int = 512, height: int = 640) -> torch.Tensor:
    """IMAGE [1, H, W, 3]: a head-and-shoulders drawing on a soft background."""
    y = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
    x = torch.linspace(0, 1, width).view(1, width).expand(height, width)
    img = torch.stack([0.55 + 0.25 * y, 0.62 + 0.18 * y, 0.72 - 0.1 * y], -1).clone()

    def ellipse(cx, cy, rx, ry):
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1

    def paint(mask, rgb):
        img[mask] = torch.tensor(rgb)

    paint(ellipse(0.5, 1.08, 0.46, 0.32), (0.18, 0.24, 0.38))           # shoulders (a dark top)
    paint((abs(x - 0.5) < 0.085) & (y > 0.55) & (y < 0.82), (0.87, 0.68, 0.56))  # neck
    paint(ellipse(0.5, 0.33, 0.27, 0.25), (0.25, 0.16, 0.1))            # hair
    paint(ellipse(0.5, 0.42, 0.21, 0.25), (0.92, 0.74, 0.62))           # face
    paint(ellipse(0.5, 0.2, 0.23, 0.09), (0.25, 0.16, 0.1))             # fringe
    for cx in (0.41, 0.59):
        paint(ellipse(cx, 0.4, 0.045, 0.022), (0.97, 0.97, 0.95))      # eyes
        paint(ellipse(cx, 0.4, 0.018, 0.0144), (0.2, 0.3, 0.25))       # irises
        paint((abs(x - cx) < 0.05) & (abs(y - 0.355 - 0.01 * (x - cx).abs() * 10) < 0.007), (0.22, 0.14, 0.09))
    paint(ellipse(0.5, 0.49, 0.02, 0.035), (0.84, 0.62, 0.52))          # nose
    paint(ellipse(0.5, 0.575, 0.07, 0.018), (0.72, 0.36, 0.36))         # lips
    paint(ellipse(0.5, 0.575, 0.06, 0.004), (0.45, 0.2, 0.2))           # mouth line
    return img.clamp(0, 1).unsqueeze(0)


def write_example_inputs(folder: str) -> list:
    from PIL import Image

    from ...media.audio_io import save_audio

    os.makedirs(folder, exist_ok=True)
    p = os.path.join(folder, PORTRAIT)
    Image.fromarray((portrait()[0] * 255).round().byte().numpy()).save(p, optimize=True)
    a = os.path.join(folder, VOICE)
    save_audio({"waveform": torch.from_numpy(synth_voice())[None, None], "sample_rate": RATE}, a)
    return [p, a]
