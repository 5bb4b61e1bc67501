"""Video files with PyAV only (no ffmpeg binary, torchvision, torchaudio or OpenCV).

* :func:`read_video` decodes frames (optionally a span, every n-th, resized) to IMAGE
  [T, H, W, 3] float32, with the frame rate and the matching span of the sound track (AUDIO).
* :func:`write_video` writes IMAGE frames (+ optional AUDIO as AAC) to an H.264 mp4;
  :class:`VideoWriter` does the same incrementally so a long render can stream chunks to disk.
* :func:`probe_video` reads frame count, fps, size and whether there is sound (no full decode).

Colour: RGB is converted to BT.709 limited-range YUV and the stream is tagged so; reading uses
each file's own tags.  Phone videos with a rotation tag are returned upright.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Dict, List, Optional, Tuple, Union

import av
import numpy as np
import torch
from av.video.reformatter import Interpolation as _SWS

from .. import host
from .audio_io import (audio_frames, check_audio, decode_audio_stream, fit_length, layout_for,
                       resample_waveform, to_channels)
from .frames import resize_frames
from .image_io import as_rgb

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif")

# H.264 encoders to try, in order, when the requested one cannot be opened; then MPEG-4 part 2.
H264_ENCODERS = ("libx264", "libopenh264", "h264_videotoolbox", "h264_nvenc", "h264_qsv", "h264_amf", "h264_mf")
FALLBACK_ENCODER = "mpeg4"
CRF_ENCODERS = ("libx264", "libx265", "libx264rgb")  # take a "crf" option

# sample rates the AAC encoder accepts; anything else is resampled to 48 kHz
AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)

ODD_SIZE_MODES = ("pad", "crop")

# frames between cancellation checks / per conversion batch
_BATCH = 16

# swscale flags: full-resolution chroma interpolation with accurate rounding halves the RGB
# round-trip error of yuv420p against swscale's fast defaults
_ENCODE_SCALER = _SWS.BICUBIC | _SWS.ACCURATE_RND | _SWS.FULL_CHR_H_INP
_DECODE_SCALER = _SWS.BICUBIC | _SWS.ACCURATE_RND | _SWS.FULL_CHR_H_INT

FpsLike = Union[int, float, Fraction, str]


# --------------------------------------------------------------------------- small helpers


def fps_fraction(fps: FpsLike) -> Fraction:
    """A frame rate as an exact Fraction: 24 -> 24, 23.976 -> 24000/1001 (NTSC rates are
    recognised), 12.5 -> 25/2, "30000/1001" -> 30000/1001."""
    if isinstance(fps, Fraction):
        rate = fps
    elif isinstance(fps, str):
        rate = Fraction(fps.strip())
    else:
        value = float(fps)
        rate = None
        for base in (24, 30, 48, 60, 120, 240):
            if abs(value - base * 1000 / 1001) < 0.0015:
                rate = Fraction(base * 1000, 1001)
                break
        if rate is None:
            rate = Fraction(value).limit_denominator(1001)
    if rate <= 0:
        raise ValueError("fps must be positive, got %r" % (fps,))
    return rate


_ENCODER_OPENS: Dict[Tuple[str, str], bool] = {}
_FALLBACK_WARNED: set = set()


def _encoder_opens(name: str, pix_fmt: str) -> bool:
    """Whether this PyAV build has encoder ``name`` and it opens here (hardware present, pix_fmt ok)."""
    key = (name, pix_fmt)
    if key not in _ENCODER_OPENS:
        try:
            ctx = av.codec.CodecContext.create(name, "w")
            ctx.width, ctx.height, ctx.pix_fmt = 64, 64, pix_fmt
            ctx.time_base = Fraction(1, 24)
            ctx.open()
            _ENCODER_OPENS[key] = True
        except Exception:
            _ENCODER_OPENS[key] = False
    return _ENCODER_OPENS[key]


def choose_encoder(codec: str = "libx264", pix_fmt: str = "yuv420p") -> str:
    """The encoder to use for ``codec``: itself when it opens, else another H.264 encoder
    (libx264, libopenh264, hardware ones), else MPEG-4 part 2, with a one-line warning (once)."""
    if _encoder_opens(codec, pix_fmt):
        return codec
    for name in H264_ENCODERS + (FALLBACK_ENCODER,):
        if name != codec and _encoder_opens(name, pix_fmt):
            if (codec, name) not in _FALLBACK_WARNED:
                _FALLBACK_WARNED.add((codec, name))
                host.log("video encoder %s is not available in this PyAV build; using %s instead" % (codec, name))
            return name
    raise RuntimeError("no usable video encoder for pix_fmt %s in this PyAV build (tried %s, %s)"
                       % (pix_fmt, codec, ", ".join(H264_ENCODERS + (FALLBACK_ENCODER,))))


def _even_axes(pix_fmt: str) -> Tuple[bool, bool]:
    """(width must be even, height must be even) for a pixel format's chroma subsampling."""
    try:
        comps = av.VideoFormat(pix_fmt, 64, 64).components
    except Exception as exc:
        raise ValueError("unknown pixel format %r" % (pix_fmt,)) from exc
    return (any(c.width < comps[0].width for c in comps[1:]),
            any(c.height < comps[0].height for c in comps[1:]))


def _to_rgb_uint8(images: torch.Tensor) -> np.ndarray:
    """IMAGE [B, H, W, C] (C = 1, 3 or 4) -> uint8 numpy [B, H, W, 3]."""
    images = as_rgb(images)
    arr = images.detach().float().clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).cpu()
    return np.ascontiguousarray(arr.numpy())


# --------------------------------------------------------------------------- writing


class VideoWriter:
    """Write IMAGE frames to a video file a batch at a time (H.264 mp4 by default).

    ::

        with VideoWriter("out.mp4", fps=24, audio=audio) as writer:
            for chunk in chunks:            # each IMAGE [b, H, W, 3] in [0, 1]
                writer.write_frames(chunk)
        # writer.path, writer.frames_written

    The size is taken from the first batch (or ``open(width, height)``); every batch must match.
    Odd sizes are made even when the pixel format needs it (yuv420p): ``odd_size="pad"`` repeats
    the last row / column, ``"crop"`` drops it; a one-line note says which.  ``audio`` (AUDIO) is
    encoded as AAC alongside the frames and trimmed / padded with silence to the video length at
    :meth:`close`.  ``crf`` is the x264 quality (0 = lossless, 19 visually near-lossless, 23
    default, 51 worst); encoders without CRF get an equivalent bit rate.  Only the first item of an
    AUDIO batch is used; more than two channels are cut to stereo.  Leaving the ``with``
    block by an exception still closes the file, keeping the frames written so far.
    """

    def __init__(self, path: str, fps: FpsLike, audio: Optional[dict] = None, crf: int = 19,
                 codec: str = "libx264", pix_fmt: str = "yuv420p", odd_size: str = "pad",
                 preset: str = "medium", metadata: Optional[Dict[str, str]] = None):
        if odd_size not in ODD_SIZE_MODES:
            raise ValueError("odd_size must be 'pad' or 'crop', got %r" % (odd_size,))
        if not 0 <= int(crf) <= 51:
            raise ValueError("crf must be in 0..51, got %r" % (crf,))
        self.path = path
        self.fps = fps_fraction(fps)
        self.crf = int(crf)
        self.codec = codec
        self.pix_fmt = pix_fmt
        self.odd_size = odd_size
        self.preset = preset
        self.metadata = dict(metadata or {})
        self.frames_written = 0
        self.width: Optional[int] = None  # size of the frames given
        self.height: Optional[int] = None
        self.out_width: Optional[int] = None  # size written (even where needed)
        self.out_height: Optional[int] = None
        self.encoder: Optional[str] = None
        self.created = False  # the file was created (opened for writing) by this writer
        self._container = None
        self._video = None
        self._audio_stream = None
        self._audio_samples: Optional[torch.Tensor] = None  # [C, S] at _audio_rate
        self._audio_rate = 0
        self._audio_sent = 0
        self._closed = False
        if audio is not None:
            waveform, rate = check_audio(audio)
            samples = waveform[0].detach().float().cpu()
            if samples.shape[0] > 2:
                samples = to_channels(samples, 2)
            if rate not in AAC_SAMPLE_RATES:
                samples = resample_waveform(samples, rate, 48000)
                rate = 48000
            self._audio_samples = samples.clamp(-1.0, 1.0)
            self._audio_rate = rate

    # ----------------------------------------------------------------- lifecycle

    def open(self, width: int, height: int) -> "VideoWriter":
        """Create the file for frames of ``width x height`` (called by the first write_frames)."""
        if self._container is not None:
            raise RuntimeError("VideoWriter for %s is already open" % self.path)
        if self._closed:
            raise RuntimeError("VideoWriter for %s is closed" % self.path)
        width, height = int(width), int(height)
        if width < 1 or height < 1:
            raise ValueError("video size must be positive, got %dx%d" % (width, height))
        ext = os.path.splitext(self.path)[1].lower()
        if ext == ".webm" and not any(k in self.codec for k in ("vp8", "vp9", "av1")):
            raise ValueError("a .webm file holds VP8 / VP9 / AV1 video only, not %s: use .mp4 / .mkv / .mov, "
                             "or codec='libvpx-vp9'" % self.codec)
        self.width, self.height = width, height
        need_w, need_h = _even_axes(self.pix_fmt)
        out_w, out_h = width, height
        if need_w and out_w % 2:
            out_w = out_w + 1 if self.odd_size == "pad" or out_w == 1 else out_w - 1
        if need_h and out_h % 2:
            out_h = out_h + 1 if self.odd_size == "pad" or out_h == 1 else out_h - 1
        if (out_w, out_h) != (width, height):
            how = "padded (last row/column repeated)" if self.odd_size == "pad" else "cropped (last row/column dropped)"
            host.log("video size %dx%d is odd; %s to %dx%d because %s needs even sizes"
                     % (width, height, how, out_w, out_h, self.pix_fmt))
        self.out_width, self.out_height = out_w, out_h

        self.encoder = choose_encoder(self.codec, self.pix_fmt)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        options = {"movflags": "+faststart"} if ext in (".mp4", ".mov", ".m4v") else {}
        self._container = av.open(self.path, "w", options=options)
        self.created = True
        try:
            for key, value in self.metadata.items():
                self._container.metadata[str(key)] = str(value)
            self._video = self._container.add_stream(self.encoder, rate=self.fps)
            self._video.width, self._video.height = out_w, out_h
            self._video.pix_fmt = self.pix_fmt
            self._configure_quality()
            if self._is_yuv:
                ctx = self._video.codec_context
                ctx.colorspace, ctx.color_primaries, ctx.color_trc = 1, 1, 1  # BT.709
                ctx.color_range = 2 if self.pix_fmt.startswith("yuvj") else 1  # JPEG / MPEG range
            if self._audio_samples is not None:
                self._audio_stream = self._container.add_stream(
                    "aac", rate=self._audio_rate, layout=layout_for(self._audio_samples.shape[0]))
                self._audio_stream.bit_rate = 192000
        except Exception:
            self._container.close()
            self._container = None
            raise
        return self

    @property
    def _is_yuv(self) -> bool:
        return self.pix_fmt.startswith(("yuv", "nv"))

    def _configure_quality(self) -> None:
        if self.encoder in CRF_ENCODERS:
            self._video.options = {"crf": str(self.crf), "preset": self.preset}
            return
        # no CRF: a bit rate that grows like x264's at that CRF (about x2 every 6 steps)
        bits_per_pixel = min(4.0, max(0.02, 0.25 * 2.0 ** ((23 - self.crf) / 6.0)))
        self._video.bit_rate = int(self.out_width * self.out_height * float(self.fps) * bits_per_pixel)

    def write_frames(self, images: torch.Tensor) -> None:
        """Append IMAGE frames [B, H, W, 3] (or one frame [H, W, 3]) in [0, 1]."""
        if self._closed:
            raise RuntimeError("VideoWriter for %s is closed" % self.path)
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4:
            raise ValueError("expected IMAGE frames [B, H, W, 3], got %s" % (tuple(images.shape),))
        if self._container is None:
            self.open(images.shape[2], images.shape[1])
        if (images.shape[2], images.shape[1]) != (self.width, self.height):
            raise ValueError("frame size %dx%d differs from the video's %dx%d"
                             % (images.shape[2], images.shape[1], self.width, self.height))
        for start in range(0, images.shape[0], _BATCH):
            host.check_interrupt()
            batch = _to_rgb_uint8(images[start:start + _BATCH])
            batch = self._fit_even(batch)
            for rgb in batch:
                self._encode_rgb(rgb)
            self._send_audio(self._audio_due(self.frames_written))

    def _fit_even(self, batch: np.ndarray) -> np.ndarray:
        if (self.out_width, self.out_height) == (self.width, self.height):
            return batch
        if self.out_width < self.width or self.out_height < self.height:
            batch = batch[:, :min(self.out_height, self.height), :min(self.out_width, self.width)]
        pad_h = self.out_height - batch.shape[1]
        pad_w = self.out_width - batch.shape[2]
        if pad_h or pad_w:
            batch = np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        return np.ascontiguousarray(batch)

    def _encode_rgb(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self._is_yuv:
            frame = frame.reformat(format=self.pix_fmt, dst_colorspace="itu709",
                                   dst_color_range=2 if self.pix_fmt.startswith("yuvj") else 1,
                                   interpolation=_ENCODE_SCALER)
        frame.pts = self.frames_written
        frame.time_base = 1 / self.fps
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def _audio_due(self, frames: int) -> int:
        """Audio samples that cover ``frames`` video frames."""
        return round(frames / self.fps * self._audio_rate) if self._audio_rate else 0

    def _send_audio(self, until: int) -> None:
        if self._audio_stream is None or until <= self._audio_sent:
            return
        piece = fit_length(self._audio_samples[:, self._audio_sent:until], until - self._audio_sent)
        for frame in audio_frames(piece, self._audio_rate, start_sample=self._audio_sent):
            for packet in self._audio_stream.encode(frame):
                self._container.mux(packet)
        self._audio_sent = until

    def close(self) -> str:
        """Flush the encoders and finish the file; returns the path.  Safe to call twice."""
        if self._closed:
            return self.path
        self._closed = True
        if self._container is None:
            raise ValueError("no frames were written to %s" % self.path)
        try:
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._audio_stream is not None:
                self._send_audio(self._audio_due(self.frames_written))
                for packet in self._audio_stream.encode(None):
                    self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        elif self._container is not None:
            try:
                self.close()
            except Exception:
                pass
        return False


def write_video(path: str, images: torch.Tensor, fps: FpsLike, audio: Optional[dict] = None,
                crf: int = 19, codec: str = "libx264", pix_fmt: str = "yuv420p",
                odd_size: str = "pad", metadata: Optional[Dict[str, str]] = None) -> str:
    """Write IMAGE frames [T, H, W, 3] in [0, 1] to ``path`` (mp4 / H.264 by default); returns ``path``.

    fps may be fractional (23.976 is written as 24000/1001).  ``audio`` (AUDIO) is muxed as AAC,
    resampled if its rate is not an AAC rate, trimmed or padded with silence to the video length.
    Falls back to another H.264 encoder, then MPEG-4, when libx264 is missing (with a warning).
    Odd sizes: see :class:`VideoWriter`.  On failure or cancellation the partial file is removed.
    """
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError("expected IMAGE frames [T, H, W, 3] with T >= 1, got %s" % (tuple(images.shape),))
    total = images.shape[0]
    writer = VideoWriter(path, fps, audio=audio, crf=crf, codec=codec, pix_fmt=pix_fmt,
                         odd_size=odd_size, metadata=metadata)
    progress = host.Progress(total, "writing video") if total >= 2 * _BATCH else None
    try:
        for start in range(0, total, _BATCH):
            writer.write_frames(images[start:start + _BATCH])
            if progress is not None:
                progress.update(min(_BATCH, total - start))
        writer.close()
    except BaseException:
        try:
            writer.close()
        except Exception:
            pass
        if writer.created and os.path.exists(path):
            os.remove(path)
        raise
    finally:
        if progress is not None:
            progress.close()
    return path


# --------------------------------------------------------------------------- reading


def _stream_fps(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(24)


class NoFramesSelected(ValueError):
    """The video has frames, but ``start_frame`` / ``stride`` select none of them."""


def _open_video(path: str):
    if not os.path.isfile(path):
        raise FileNotFoundError("video file not found: %s" % path)
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ValueError("cannot open %s as a video: %s" % (path, exc)) from exc
    if not container.streams.video:
        container.close()
        raise ValueError("%s has no video stream (an audio-only file?)" % path)
    return container


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counterclockwise) so the frame shows upright."""
    turns = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def read_video(path: str, max_frames: Optional[int] = None, start_frame: int = 0, stride: int = 1,
               size: Optional[Tuple[int, int]] = None, resize_method: str = "bicubic",
               with_audio: bool = True) -> Tuple[torch.Tensor, float, Optional[dict]]:
    """Decode a video file to ``(IMAGE [T, H, W, 3] float32 CPU, fps, AUDIO or None)``.

    Frames ``start_frame, start_frame + stride, ...`` are kept, at most ``max_frames`` of them.
    ``size=(width, height)`` resizes every frame to that size without cropping (video extension,
    spec §4.5.5; use frames.center_crop_resize afterwards for a crop).  The returned fps is the
    rate of the kept frames (file fps / stride), so writing them back keeps the duration.  AUDIO
    is the first sound track's span that the kept frames cover (None when there is none or
    ``with_audio`` is False).  Frames are held as 8-bit until the end (resized ones too), so
    memory stays near one float copy.  Raises ValueError when no frame is selected.
    """
    if int(stride) < 1:
        raise ValueError("stride must be >= 1, got %r" % (stride,))
    if int(start_frame) < 0:
        raise ValueError("start_frame must be >= 0, got %r" % (start_frame,))
    if max_frames is not None and int(max_frames) < 1:
        raise ValueError("max_frames must be >= 1 or None, got %r" % (max_frames,))
    if size is not None:
        size = (int(size[0]), int(size[1]))
        if size[0] < 1 or size[1] < 1:
            raise ValueError("size must be (width, height) > 0, got %r" % (size,))
    stride, start_frame = int(stride), int(start_frame)

    container = _open_video(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        native_fps = _stream_fps(stream)
        stored_frames = int(stream.frames or 0)
        expected = None
        if stored_frames:
            expected = max(0, -(-(stored_frames - start_frame) // stride))
            if max_frames is not None:
                expected = min(expected, int(max_frames))
        progress = host.Progress(expected, "reading video") if expected and expected >= 4 * _BATCH else None
        chunks: List[np.ndarray] = []  # uint8 [b, H, W, 3]
        pending: List[np.ndarray] = []
        kept = 0
        first_time: Optional[float] = None

        def flush() -> None:
            batch = np.stack(pending)
            pending.clear()
            if size is not None and (batch.shape[2], batch.shape[1]) != size:
                resized = resize_frames(torch.from_numpy(batch).float().div_(255.0), size[0], size[1], resize_method)
                batch = (resized * 255.0).round_().to(torch.uint8).numpy()
            chunks.append(batch)

        decoded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                decoded = index + 1
                if index < start_frame or (index - start_frame) % stride:
                    if index % (4 * _BATCH) == 0:
                        host.check_interrupt()
                    continue
                if first_time is None:
                    first_time = float(frame.time) if frame.time is not None else start_frame / float(native_fps)
                rgb = _upright(frame.to_ndarray(format="rgb24", interpolation=_DECODE_SCALER), frame.rotation or 0)
                if pending and rgb.shape != pending[0].shape:
                    raise ValueError("frame %d of %s changes size (%s -> %s); give size=(w, h) to resize"
                                     % (index, path, pending[0].shape[:2], rgb.shape[:2]))
                pending.append(rgb)
                kept += 1
                if len(pending) == _BATCH:
                    host.check_interrupt()
                    flush()
                    if progress is not None:
                        progress.set(kept)
                if max_frames is not None and kept >= int(max_frames):
                    break
            if pending:
                flush()
            if progress is not None:
                progress.set(kept)
        except av.FFmpegError as exc:  # a damaged file: say so, whatever was decoded before
            raise ValueError("cannot decode %s after %d frame(s): %s" % (path, decoded, exc)) from exc
        finally:
            if progress is not None:
                progress.close()

    if decoded == 0:
        raise ValueError("%s holds no decodable video frames" % path)
    if kept == 0:
        raise NoFramesSelected("no frames selected from %s (start_frame=%d, stride=%d; the video has %s frames)"
                         % (path, start_frame, stride, stored_frames or "an unknown number of"))
    shapes = {c.shape[1:] for c in chunks}
    if len(shapes) > 1:
        raise ValueError("frames of %s change size (%s); give size=(w, h) to resize" % (path, sorted(shapes)))
    images = torch.empty((kept,) + chunks[0].shape[1:], dtype=torch.float32)
    offset = 0
    for chunk in chunks:
        images[offset:offset + len(chunk)] = torch.from_numpy(chunk).float().div_(255.0)
        offset += len(chunk)
    fps = float(native_fps) / stride

    audio = None
    if with_audio:
        span = kept * stride / float(native_fps)
        try:
            audio = _read_audio_span(path, first_time or 0.0, span)
        except (av.FFmpegError, ValueError) as exc:
            host.log("the sound track of %s cannot be decoded (%s); loading the frames without sound" % (path, exc))
            audio = None
    return images, fps, audio


def _read_audio_span(path: str, start: float, duration: float) -> Optional[dict]:
    with av.open(path) as container:
        if not container.streams.audio:
            return None
        waveform, rate = decode_audio_stream(container, container.streams.audio[0], start, start + duration)
    if waveform.shape[-1] == 0:
        return None
    return {"waveform": waveform[None], "sample_rate": rate}


def probe_video(path: str) -> dict:
    """Describe a video, decoding at most its first frame (for the rotation tag).

    Returns ``dict(frames, fps, width, height, has_audio, duration, codec, rotation)``; frames is
    counted from packets when the container does not store it; width / height are as displayed
    (swapped for a 90/270 degree rotation tag); duration in seconds (0.0 when unknown).
    """
    container = _open_video(path)
    with container:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        frames = int(stream.frames or 0)
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        has_audio = bool(container.streams.audio)
        codec = stream.codec_context.name
        rotation = 0
        try:
            rotation = int(next(container.decode(stream)).rotation or 0)
        except (StopIteration, av.FFmpegError):
            pass
    if frames == 0:  # not stored (mkv, webm): count the packets
        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = sum(1 for packet in container.demux(stream) if packet.size)
    if int(round(rotation / 90.0)) % 2:
        width, height = height, width
    return {
        "frames": frames,
        "fps": float(fps),
        "width": int(width),
        "height": int(height),
        "has_audio": has_audio,
        "duration": duration,
        "codec": codec,
        "rotation": rotation,
    }


__all__ = ["VIDEO_EXTENSIONS", "fps_fraction", "choose_encoder", "VideoWriter", "write_video",
           "read_video", "probe_video"]
