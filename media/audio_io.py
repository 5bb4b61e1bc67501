"""Audio: load any container's audio with PyAV, save wav / flac, resample, trim / pad.

AUDIO (ComfyUI) = ``{"waveform": float32 [B, channels, samples], "sample_rate": int}``,
samples in [-1, 1].  Everything here is PyAV + torch (no torchaudio, no ffmpeg binary).
The small stream helpers at the bottom (decode a stream, make encoder frames) are shared with
``video_io`` for the sound track of videos.
"""
from __future__ import annotations

import math
import os
from typing import List, Optional, Tuple

import av
import numpy as np
import torch

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".mp4", ".mkv", ".mov", ".webm")

# channel count -> FFmpeg layout name used when writing
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

# (codec, sample format) per format and bit depth for save_audio
_SAVE_CODECS = {
    ".wav": {16: ("pcm_s16le", "s16"), 24: ("pcm_s24le", "s32"), 32: ("pcm_f32le", "flt")},
    ".flac": {16: ("flac", "s16"), 24: ("flac", "s32")},
}


# --------------------------------------------------------------------------- AUDIO dict helpers


def make_audio(waveform: torch.Tensor, sample_rate: int) -> dict:
    """Build an AUDIO dict; ``waveform`` may be [samples], [channels, samples] or [B, channels, samples]."""
    if waveform.dim() == 1:
        waveform = waveform[None, None]
    elif waveform.dim() == 2:
        waveform = waveform[None]
    if waveform.dim() != 3:
        raise ValueError("waveform must be [B, channels, samples], got %s" % (tuple(waveform.shape),))
    if int(sample_rate) <= 0:
        raise ValueError("sample_rate must be positive, got %r" % (sample_rate,))
    return {"waveform": waveform.float(), "sample_rate": int(sample_rate)}


def check_audio(audio) -> Tuple[torch.Tensor, int]:
    """Validate an AUDIO dict; returns ``(waveform [B, C, S], sample_rate)``."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError("expected AUDIO = {'waveform': [B, channels, samples], 'sample_rate': int}, got %s"
                         % type(audio).__name__)
    waveform = audio["waveform"]
    if not isinstance(waveform, torch.Tensor) or waveform.dim() != 3:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise ValueError("AUDIO waveform must be a tensor [B, channels, samples], got %s" % (shape,))
    if waveform.shape[1] < 1:
        raise ValueError("AUDIO waveform has no channels: %s" % (tuple(waveform.shape),))
    sample_rate = int(audio["sample_rate"])
    if sample_rate <= 0:
        raise ValueError("AUDIO sample_rate must be positive, got %r" % (audio["sample_rate"],))
    return waveform, sample_rate


def audio_duration(audio: dict) -> float:
    """Length of an AUDIO in seconds."""
    waveform, sample_rate = check_audio(audio)
    return waveform.shape[-1] / sample_rate


def fit_length(waveform: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Trim the last axis to ``num_samples`` or pad it with silence (zeros) up to it."""
    num_samples = int(num_samples)
    have = waveform.shape[-1]
    if have >= num_samples:
        return waveform[..., :num_samples]
    pad = waveform.new_zeros(*waveform.shape[:-1], num_samples - have)
    return torch.cat([waveform, pad], dim=-1)


def fit_audio_length(audio: dict, seconds: float) -> dict:
    """AUDIO trimmed or padded with silence to ``seconds``."""
    waveform, sample_rate = check_audio(audio)
    return {"waveform": fit_length(waveform, round(seconds * sample_rate)), "sample_rate": sample_rate}


# --------------------------------------------------------------------------- resampling


def resample_waveform(waveform: torch.Tensor, orig_rate: int, new_rate: int,
                      zero_crossings: int = 16, rolloff: float = 0.95) -> torch.Tensor:
    """Band-limited resampling of ``waveform [..., samples]`` from ``orig_rate`` to ``new_rate`` Hz.

    Windowed-sinc interpolation (Hann window, ``zero_crossings`` lobes each side, cutoff at
    ``rolloff`` x the lower Nyquist frequency so downsampling does not alias).  Any rate pair works
    (no rational-kernel blow-up).  Output length = ceil(samples * new_rate / orig_rate).
    """
    orig_rate, new_rate = int(orig_rate), int(new_rate)
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError("sample rates must be positive, got %d -> %d" % (orig_rate, new_rate))
    if orig_rate == new_rate:
        return waveform.clone()
    lead_shape = waveform.shape[:-1]
    src = waveform.reshape(-1, waveform.shape[-1]).float()
    in_len = src.shape[-1]
    out_len = math.ceil(in_len * new_rate / orig_rate)
    if in_len == 0 or out_len == 0:
        return waveform.new_zeros(*lead_shape, out_len)
    cutoff = min(1.0, new_rate / orig_rate) * rolloff  # in cycles per 2 input samples
    half_width = zero_crossings / cutoff  # kernel half-width in input samples
    taps = torch.arange(-math.ceil(half_width) + 1, math.ceil(half_width) + 1, device=src.device)
    out = src.new_empty(src.shape[0], out_len)
    chunk = max(1024, 4_000_000 // max(1, taps.numel() * src.shape[0]))
    for start in range(0, out_len, chunk):
        j = torch.arange(start, min(start + chunk, out_len), device=src.device, dtype=torch.float64)
        pos = j * (orig_rate / new_rate)  # output sample positions on the input grid
        base = torch.floor(pos)
        idx = base.long()[:, None] + taps[None, :]  # [n, taps]
        dist = (pos - base)[:, None] - taps[None, :].double()
        weight = cutoff * torch.sinc(cutoff * dist) * 0.5 * (1.0 + torch.cos(math.pi * dist / half_width))
        weight = torch.where(dist.abs() < half_width, weight, torch.zeros_like(weight))
        valid = (idx >= 0) & (idx < in_len)
        weight = torch.where(valid, weight, torch.zeros_like(weight)).float()
        gathered = src[:, idx.clamp(0, in_len - 1)]  # [N, n, taps]
        out[:, start:start + j.numel()] = (gathered * weight[None]).sum(-1)
    return out.reshape(*lead_shape, out_len).to(waveform.dtype)


def resample_audio(audio: dict, sample_rate: int) -> dict:
    """AUDIO resampled to ``sample_rate`` Hz (returned as is when it already has that rate)."""
    waveform, orig = check_audio(audio)
    if orig == int(sample_rate):
        return audio
    return {"waveform": resample_waveform(waveform, orig, int(sample_rate)), "sample_rate": int(sample_rate)}


def to_channels(waveform: torch.Tensor, channels: int) -> torch.Tensor:
    """[..., C, S] -> [..., channels, S]: mono is the mean of all channels, mono -> N repeats,
    other changes keep the first ``channels`` channels (or repeat the last)."""
    have = waveform.shape[-2]
    if have == channels:
        return waveform
    if channels == 1:
        return waveform.mean(dim=-2, keepdim=True)
    if have == 1:
        return waveform.expand(*waveform.shape[:-2], channels, waveform.shape[-1]).clone()
    if have > channels:
        return waveform[..., :channels, :]
    extra = waveform[..., -1:, :].expand(*waveform.shape[:-2], channels - have, waveform.shape[-1])
    return torch.cat([waveform, extra], dim=-2)


# --------------------------------------------------------------------------- load / save


def load_audio(path: str, sample_rate: Optional[int] = None, mono: bool = False,
               start: float = 0.0, duration: Optional[float] = None) -> dict:
    """Load the first audio stream of any file PyAV can open (wav, flac, mp3, ogg, m4a, mp4, ...).

    Returns AUDIO with waveform float32 [1, channels, samples] in [-1, 1] on the CPU.
    ``sample_rate``: resample to this rate; ``mono``: average the channels; ``start`` /
    ``duration`` (seconds): keep only that span.  Raises ValueError when there is no audio stream.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError("audio file not found: %s" % path)
    try:
        container = av.open(path)
    except av.FFmpegError as exc:
        raise ValueError("cannot open %s as audio: %s" % (path, exc)) from exc
    with container:
        if not container.streams.audio:
            raise ValueError("%s has no audio stream" % path)
        stream = container.streams.audio[0]
        end = None if duration is None else float(start) + float(duration)
        waveform, rate = decode_audio_stream(container, stream, float(start), end)
    if mono:
        waveform = waveform.mean(dim=0, keepdim=True)
    audio = {"waveform": waveform[None], "sample_rate": rate}
    if sample_rate is not None:
        audio = resample_audio(audio, int(sample_rate))
    return audio


def save_audio(audio: dict, path: str, bits: int = 16, batch_index: int = 0) -> str:
    """Write one item of an AUDIO batch as .wav (16 / 24-bit PCM or 32-bit float) or .flac
    (16 / 24-bit); returns ``path``.  Samples are clipped to [-1, 1]; parent folders are created."""
    waveform, sample_rate = check_audio(audio)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _SAVE_CODECS:
        raise ValueError("cannot save audio as %r: use .wav or .flac" % (ext or path))
    if int(bits) not in _SAVE_CODECS[ext]:
        raise ValueError("%s supports %s-bit audio, got %r" % (ext, "/".join(map(str, _SAVE_CODECS[ext])), bits))
    codec, sample_format = _SAVE_CODECS[ext][int(bits)]
    samples = waveform[batch_index].detach().float().cpu().clamp(-1.0, 1.0)
    channels = samples.shape[0]
    if channels not in _LAYOUTS:
        raise ValueError("can save 1 to 8 channels, got %d" % channels)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=_LAYOUTS[channels])
        stream.format = sample_format
        for frame in audio_frames(samples, sample_rate, start_sample=0):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# --------------------------------------------------------------------------- stream helpers (shared with video_io)


def decode_audio_stream(container, stream, start: float = 0.0,
                        end: Optional[float] = None) -> Tuple[torch.Tensor, int]:
    """Decode ``stream`` of an open PyAV ``container`` to (waveform float32 [channels, samples], rate).

    ``start`` / ``end`` are seconds on the container's timeline; samples are placed by their
    timestamps (silence fills a span before the first sample).  Without ``end`` the result stops at
    the stream's declared duration, which drops encoder padding (e.g. AAC's last frame).  The
    result is never padded at the end: it may be shorter than ``end - start``.
    """
    rate = int(stream.codec_context.sample_rate or stream.rate)
    resampler = None
    chunks: List[np.ndarray] = []
    first_time: Optional[float] = None
    stream.thread_type = "AUTO"
    for frame in container.decode(stream):
        if first_time is None and frame.pts is not None and frame.time_base is not None:
            first_time = float(frame.pts * frame.time_base)
        if resampler is None:
            resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
        for converted in resampler.resample(frame):
            chunks.append(converted.to_ndarray())
    if resampler is not None:
        for converted in resampler.resample(None):
            chunks.append(converted.to_ndarray())
    if not chunks:
        return torch.zeros((max(1, stream.codec_context.layout.nb_channels), 0)), rate
    data = torch.from_numpy(np.concatenate(chunks, axis=-1).astype(np.float32, copy=False))
    first_time = first_time or 0.0
    stream_start = float(stream.start_time * stream.time_base) if stream.start_time is not None else first_time
    if stream.duration and stream.time_base:
        stream_end = stream_start + float(stream.duration * stream.time_base)
        end = stream_end if end is None else min(end, stream_end)
    offset = round((start - first_time) * rate)  # index of ``start`` in data
    if offset < 0:
        data = torch.cat([data.new_zeros(data.shape[0], -offset), data], dim=-1)
        offset = 0
    data = data[:, offset:]
    if end is not None:
        data = data[:, :max(0, round((end - start) * rate))]
    return data.contiguous(), rate


def audio_frames(samples: torch.Tensor, sample_rate: int, start_sample: int = 0, frame_size: int = 8192):
    """Yield PyAV ``AudioFrame`` s (fltp) of ``samples [channels, n]`` with pts counted in samples
    from ``start_sample`` (the encoder converts format / re-chunks as its codec needs)."""
    channels = samples.shape[0]
    layout = _LAYOUTS[channels]
    data = samples.detach().float().cpu().contiguous().numpy()
    for offset in range(0, data.shape[-1], frame_size):
        piece = np.ascontiguousarray(data[:, offset:offset + frame_size])
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start_sample + offset
        yield frame


def layout_for(channels: int) -> str:
    """The FFmpeg channel layout name used when writing ``channels`` channels (1..8)."""
    if channels not in _LAYOUTS:
        raise ValueError("can write 1 to 8 audio channels, got %d" % channels)
    return _LAYOUTS[channels]


__all__ = ["AUDIO_EXTENSIONS", "make_audio", "check_audio", "audio_duration", "fit_length",
           "fit_audio_length", "resample_waveform", "resample_audio", "to_channels", "load_audio",
           "save_audio", "decode_audio_stream", "audio_frames", "layout_for"]
