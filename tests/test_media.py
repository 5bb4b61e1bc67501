"""Media layer: video / audio / image files, size and frame rules, crop-resize, colour matching."""
import math
import os
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from skyreels_pack import host
from skyreels_pack.media import audio_io, color_match, frames, image_io, video_io

T, H, W = 17, 48, 64


def moving_pattern(t=T, h=H, w=W):
    """Smooth colour waves that move with time: IMAGE [t, h, w, 3]."""
    tt = torch.arange(t, dtype=torch.float32)[:, None, None]
    yy = torch.arange(h, dtype=torch.float32)[None, :, None]
    xx = torch.arange(w, dtype=torch.float32)[None, None, :]
    red = 0.5 + 0.4 * torch.sin((xx + 3 * tt) / 8.0)
    green = 0.5 + 0.4 * torch.cos((yy - 2 * tt) / 6.0)
    blue = (xx + yy) / (w + h) * torch.ones_like(tt)
    return torch.stack([c.expand(t, h, w) for c in (red, green, blue)], dim=-1).contiguous()


def sine_audio(seconds, rate=44100, freq=440.0, channels=2, amp=0.3):
    n = int(round(seconds * rate))
    wave = amp * torch.sin(2 * math.pi * freq * torch.arange(n, dtype=torch.float64) / rate)
    return {"waveform": wave.float()[None, None].repeat(1, channels, 1), "sample_rate": rate}


def dominant_frequency(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples.numpy() * np.hanning(len(samples))))
    return np.argmax(spectrum) * rate / len(samples)


# --------------------------------------------------------------------------- video files


@pytest.mark.parametrize("fps", [24, 23.976])
def test_video_round_trip(tmp_path, fps):
    images = moving_pattern()
    path = video_io.write_video(str(tmp_path / "clip.mp4"), images, fps, crf=10)
    info = video_io.probe_video(path)
    assert (info["frames"], info["width"], info["height"], info["has_audio"]) == (T, W, H, False)
    assert info["codec"] == "h264"
    back, got_fps, audio = video_io.read_video(path)
    assert back.shape == (T, H, W, 3) and back.dtype == torch.float32
    assert got_fps == pytest.approx(24000 / 1001 if fps != 24 else 24.0, abs=1e-6)
    assert info["fps"] == pytest.approx(got_fps)
    assert audio is None
    assert (back - images).abs().mean().item() < 0.015
    # frames come back in order: each decoded frame is closest to its own source frame
    dist = (back[:, None] - images[None]).abs().mean(dim=(2, 3, 4))
    assert torch.equal(dist.argmin(dim=1), torch.arange(T))


def test_fps_fraction():
    assert video_io.fps_fraction(23.976) == Fraction(24000, 1001)
    assert video_io.fps_fraction(29.97) == Fraction(30000, 1001)
    assert video_io.fps_fraction(12.5) == Fraction(25, 2)
    assert video_io.fps_fraction("30000/1001") == Fraction(30000, 1001)
    assert video_io.fps_fraction(16) == 16
    with pytest.raises(ValueError):
        video_io.fps_fraction(0)


def test_audio_mux_round_trip(tmp_path):
    fps = 24
    images = moving_pattern()
    audio = sine_audio(2.0, rate=44100, freq=440.0)  # longer than the video: trimmed
    path = video_io.write_video(str(tmp_path / "sound.mp4"), images, fps, audio=audio)
    assert video_io.probe_video(path)["has_audio"]
    _, _, back = video_io.read_video(path)
    assert back["sample_rate"] == 44100 and back["waveform"].shape[:2] == (1, 2)
    assert back["waveform"].shape[-1] / 44100 == pytest.approx(T / fps, abs=0.03)
    assert dominant_frequency(back["waveform"][0, 0], 44100) == pytest.approx(440.0, abs=5.0)
    loaded = audio_io.load_audio(path)  # the sound track of a video loads as audio too
    assert audio_io.audio_duration(loaded) == pytest.approx(T / fps, abs=0.03)

    # a short mono track at a rate AAC does not take: resampled and padded with silence
    short = sine_audio(0.3, rate=20000, freq=300.0, channels=1)
    path = video_io.write_video(str(tmp_path / "short.mp4"), images, fps, audio=short)
    _, _, back = video_io.read_video(path)
    assert back["sample_rate"] == 48000 and back["waveform"].shape[1] == 1
    assert back["waveform"].shape[-1] / 48000 == pytest.approx(T / fps, abs=0.03)
    tail = back["waveform"][0, 0, int(0.4 * 48000):]
    assert tail.abs().max().item() < 0.02  # the padding is silence


def test_video_writer_streams_like_one_shot(tmp_path):
    images = moving_pattern()
    one_shot = video_io.write_video(str(tmp_path / "one.mp4"), images, 24)
    with video_io.VideoWriter(str(tmp_path / "stream.mp4"), 24) as writer:
        for start in range(0, T, 5):
            writer.write_frames(images[start:start + 5])
        with pytest.raises(ValueError, match="differs"):
            writer.write_frames(torch.zeros(1, H + 2, W, 3))
    assert writer.frames_written == T
    a, _, _ = video_io.read_video(one_shot)
    b, _, _ = video_io.read_video(writer.path)
    assert a.shape == b.shape == (T, H, W, 3)
    assert video_io.probe_video(writer.path)["frames"] == video_io.probe_video(one_shot)["frames"] == T
    assert (a - b).abs().mean().item() < 0.01


def test_odd_sizes_pad_or_crop(tmp_path):
    images = moving_pattern(5, 47, 63)
    padded = video_io.write_video(str(tmp_path / "pad.mp4"), images, 24, crf=5)
    back, _, _ = video_io.read_video(padded)
    assert back.shape == (5, 48, 64, 3)
    # the added column / row repeat the last ones
    assert (back[:, :, 63] - back[:, :, 62]).abs().mean().item() < 0.02
    assert (back[:, :47, :63] - images).abs().mean().item() < 0.02
    cropped = video_io.write_video(str(tmp_path / "crop.mp4"), images, 24, odd_size="crop")
    info = video_io.probe_video(cropped)
    assert (info["width"], info["height"]) == (62, 46)
    # yuv444p has no chroma subsampling: the odd size is kept
    kept = video_io.write_video(str(tmp_path / "444.mp4"), images, 24, pix_fmt="yuv444p")
    assert (video_io.probe_video(kept)["width"], video_io.probe_video(kept)["height"]) == (63, 47)


def test_read_video_span_stride_and_size(tmp_path):
    images = moving_pattern(20)
    path = video_io.write_video(str(tmp_path / "span.mp4"), images, 24, crf=5,
                                audio=sine_audio(20 / 24, rate=48000))
    clip, fps, audio = video_io.read_video(path, max_frames=5, start_frame=2, stride=3)
    assert clip.shape == (5, H, W, 3)
    assert fps == pytest.approx(8.0)
    assert (clip - images[2::3][:5]).abs().mean().item() < 0.015
    assert audio["waveform"].shape[-1] / 48000 == pytest.approx(5 * 3 / 24, abs=0.03)
    small, _, _ = video_io.read_video(path, max_frames=4, size=(32, 20), with_audio=False)
    assert small.shape == (4, 20, 32, 3)
    expected = frames.resize_frames(images[:4], 32, 20)
    assert (small - expected).abs().mean().item() < 0.02
    with pytest.raises(ValueError, match="no frames selected"):
        video_io.read_video(path, start_frame=50)


def test_rotation_tag_gives_upright_frames(tmp_path):
    path = str(tmp_path / "rotated.mp4")
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:8, :8] = 255  # white marker top-left
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # display = 90 degrees counterclockwise
        for i in range(2):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    clip, _, _ = video_io.read_video(path)
    assert clip.shape == (2, 64, 48, 3)
    assert clip[0, -4, 4].mean() > 0.8 and clip[0, 4, 4].mean() < 0.2  # marker moved to bottom-left
    info = video_io.probe_video(path)
    assert (info["width"], info["height"], info["rotation"]) == (48, 64, 90)


def test_mkv_frame_count_and_webm_refusal(tmp_path):
    path = video_io.write_video(str(tmp_path / "clip.mkv"), moving_pattern(), 24)
    info = video_io.probe_video(path)  # mkv stores no frame count: counted from packets
    assert info["frames"] == T and info["fps"] == pytest.approx(24.0)
    existing = tmp_path / "clip.webm"
    existing.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="webm"):
        video_io.write_video(str(existing), moving_pattern(), 24)
    assert existing.read_bytes() == b"keep me"  # refused before creating: nothing removed


def test_encoder_fallback_and_mpeg4(tmp_path):
    assert video_io.choose_encoder("libx264") == "libx264"  # this PyAV build has it
    fallback = video_io.choose_encoder("no_such_encoder")
    assert fallback in video_io.H264_ENCODERS + (video_io.FALLBACK_ENCODER,)
    path = video_io.write_video(str(tmp_path / "part2.mp4"), moving_pattern(5), 24, codec="mpeg4")
    clip, _, _ = video_io.read_video(path)
    assert clip.shape == (5, H, W, 3) and video_io.probe_video(path)["codec"] == "mpeg4"


def test_cancel_removes_partial_file(tmp_path):
    path = str(tmp_path / "cancelled.mp4")
    host.request_interrupt()
    with pytest.raises(host.Interrupted):
        video_io.write_video(path, moving_pattern(), 24)
    assert not os.path.exists(path)


# --------------------------------------------------------------------------- audio files


@pytest.mark.parametrize("name,bits,tol", [("a.wav", 16, 1e-4), ("a.wav", 32, 1e-6), ("a.flac", 16, 1e-4)])
def test_audio_save_load(tmp_path, name, bits, tol):
    audio = sine_audio(0.5, rate=22050, freq=330.0)
    path = audio_io.save_audio(audio, str(tmp_path / name), bits=bits)
    back = audio_io.load_audio(path)
    assert back["sample_rate"] == 22050
    assert back["waveform"].shape == audio["waveform"].shape
    assert (back["waveform"] - audio["waveform"]).abs().max().item() < tol
    part = audio_io.load_audio(path, start=0.1, duration=0.2, mono=True, sample_rate=16000)
    assert part["waveform"].shape == (1, 1, 3200) and part["sample_rate"] == 16000
    assert dominant_frequency(part["waveform"][0, 0], 16000) == pytest.approx(330.0, abs=8.0)


def test_resample_waveform():
    rate, new = 44100, 16000
    wave = torch.sin(2 * math.pi * 440 * torch.arange(rate // 2, dtype=torch.float64) / rate).float()
    out = audio_io.resample_waveform(wave, rate, new)
    assert out.shape[-1] == math.ceil(len(wave) * new / rate)
    exact = torch.sin(2 * math.pi * 440 * torch.arange(out.shape[-1], dtype=torch.float64) / new).float()
    assert (out - exact)[200:-200].abs().max().item() < 2e-3
    up = audio_io.resample_waveform(out, new, 48000)
    exact_up = torch.sin(2 * math.pi * 440 * torch.arange(up.shape[-1], dtype=torch.float64) / 48000).float()
    assert (up - exact_up)[600:-600].abs().max().item() < 4e-3
    # a tone above the new Nyquist frequency is filtered out, not aliased
    high = torch.sin(2 * math.pi * 10000 * torch.arange(rate // 2, dtype=torch.float64) / rate).float()
    assert audio_io.resample_waveform(high, rate, new)[200:-200].abs().max().item() < 0.02
    assert audio_io.fit_length(torch.ones(2, 5), 8).tolist() == [[1, 1, 1, 1, 1, 0, 0, 0]] * 2


# --------------------------------------------------------------------------- images


def test_load_image_modes(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[:5, :, 3] = 0  # top half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image, mask = image_io.load_image(str(tmp_path / "rgba.png"))
    assert image.shape == (1, 10, 12, 3) and mask.shape == (1, 10, 12)
    assert image[0, 7, 3, 0].item() == pytest.approx(200 / 255)
    assert mask[0, :5].min().item() == 1.0 and mask[0, 5:].max().item() == 0.0

    Image.fromarray(np.full((6, 8, 3), 50, np.uint8), "RGB").save(tmp_path / "rgb.jpg")
    image, mask = image_io.load_image(str(tmp_path / "rgb.jpg"))
    assert image.shape == (1, 6, 8, 3) and torch.count_nonzero(mask) == 0

    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(tmp_path / "deep.png")  # 16-bit gray
    image, _ = image_io.load_image(str(tmp_path / "deep.png"))
    assert image.shape == (1, 4, 4, 3)
    assert image[0, 0, 0, 0].item() == pytest.approx(1000 / 65535, abs=1e-6)

    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.save(tmp_path / "pal.png", transparency=0)
    image, mask = image_io.load_image(str(tmp_path / "pal.png"))
    assert image[0, 0, 1].tolist() == [0.0, 0.0, 1.0]
    assert mask[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]

    wide = Image.fromarray(np.zeros((20, 40, 3), np.uint8), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    wide.save(tmp_path / "exif.jpg", exif=exif)
    image, _ = image_io.load_image(str(tmp_path / "exif.jpg"))
    assert image.shape == (1, 40, 20, 3)


def test_save_image_and_video_tensor_round_trip(tmp_path):
    images = moving_pattern(3)
    path = image_io.save_image(images, str(tmp_path / "out" / "frame.png"), index=1, text={"prompt": "{}"})
    back, mask = image_io.load_image(path)
    assert (back[0] - images[1]).abs().max().item() <= 0.5 / 255 + 1e-6
    assert Image.open(path).text["prompt"] == "{}"
    with pytest.raises(ValueError, match="use one of"):
        image_io.save_image(images, str(tmp_path / "frame.xyz"))

    video = image_io.image_to_video_tensor(images)
    assert video.shape == (1, 3, 3, H, W)
    assert video.min().item() >= -1.0 and video.max().item() <= 1.0
    assert video[0, 0, 2, 5, 7].item() == pytest.approx(images[2, 5, 7, 0].item() * 2 - 1, abs=1e-6)
    assert torch.allclose(image_io.video_tensor_to_image(video), images, atol=1e-6)
    assert image_io.video_tensor_to_image(video * 3).max().item() == 1.0  # clamped


# --------------------------------------------------------------------------- size and frame rules


def test_snap_size():
    assert frames.snap_size(960, 544) == (960, 544)
    assert frames.snap_size(970, 540) == (976, 544)
    assert frames.snap_size(970, 540, mode="floor") == (960, 528)
    assert frames.snap_size(961, 529, mode="ceil") == (976, 544)
    assert frames.snap_size(5, 7) == (16, 16)
    assert frames.snap_size(960, 544, mode="refuse") == (960, 544)
    with pytest.raises(ValueError, match=r"multiple of 16.*width 970 \(use 960 or 976\)"):
        frames.snap_size(970, 544, mode="refuse")
    with pytest.raises(ValueError, match=r"height 540 \(use 528 or 544\)"):
        frames.snap_size(960, 540, mode="refuse")
    with pytest.raises(ValueError, match="size mode"):
        frames.snap_size(960, 544, mode="nearest")


def test_snap_frames():
    assert [frames.snap_frames(n) for n in (1, 2, 94, 95, 96, 97)] == [1, 1, 93, 97, 97, 97]
    assert frames.snap_frames(96, "floor") == 93 and frames.snap_frames(94, "ceil") == 97
    assert frames.snap_frames(97, "refuse") == 97
    with pytest.raises(ValueError, match=r"frames must be 4k\+1 \(e.g. 93 or 97\)"):
        frames.snap_frames(96, "refuse")
    with pytest.raises(ValueError):
        frames.snap_frames(0)
    assert frames.frames_to_latent_frames(97) == 25


def test_orient_like():
    portrait = torch.zeros(1, 100, 60, 3)
    landscape = torch.zeros(1, 60, 100, 3)
    assert frames.orient_like(960, 544, portrait) == (544, 960)
    assert frames.orient_like(960, 544, landscape) == (960, 544)
    assert frames.orient_like(544, 960, landscape) == (960, 544)
    assert frames.orient_like(960, 544, torch.zeros(1, 50, 50, 3)) == (960, 544)


def _three_bands(h, w, vertical):
    """Red / green / blue bands along x (or y when vertical): IMAGE [1, h, w, 3]."""
    img = torch.zeros(1, h, w, 3)
    n = h if vertical else w
    edges = (0, n // 5, n - n // 5, n)
    for c in range(3):
        sl = slice(edges[c], edges[c + 1])
        if vertical:
            img[0, sl, :, c] = 1.0
        else:
            img[0, :, sl, c] = 1.0
    return img


@pytest.mark.parametrize("method", ["bicubic", "bilinear", "lanczos"])
def test_center_crop_resize_geometry(method):
    # 100 x 60, red | green | blue columns 0-19 | 20-79 | 80-99: a square crop keeps only green
    wide = _three_bands(60, 100, vertical=False)
    assert frames.center_crop_box(100, 60, 48, 48) == (20, 0, 60, 60)
    out = frames.center_crop_resize(wide, 48, 48, method)
    assert out.shape == (1, 48, 48, 3)
    assert torch.allclose(out[0], torch.tensor([0.0, 1.0, 0.0]).expand(48, 48, 3), atol=1e-5)
    # the same for a tall image (rows)
    tall = _three_bands(100, 60, vertical=True)
    out = frames.center_crop_resize(tall, 32, 32, method)
    assert torch.allclose(out[0], torch.tensor([0.0, 1.0, 0.0]).expand(32, 32, 3), atol=1e-5)
    # 2:1 target on 100 x 60: full width, 50 rows from row 5
    assert frames.center_crop_box(100, 60, 64, 32) == (0, 5, 100, 50)
    out = frames.center_crop_resize(wide, 64, 32, method)
    assert out.shape == (1, 32, 64, 3)
    assert out[0, :, :10, 0].min() > 0.95 and out[0, :, 30:34, 1].min() > 0.95 and out[0, :, -10:, 2].min() > 0.95
    # official I2V: crop to the requested aspect, resize to the size floored to multiples of 16
    out = frames.center_crop_resize(wide, 48, 32, method, crop_aspect=(60, 40))
    assert out.shape == (1, 32, 48, 3)


@pytest.mark.parametrize("method", ["bicubic", "bilinear", "lanczos"])
def test_resize_frames_no_crop_and_antialias(method):
    img = torch.zeros(2, 40, 40, 3)
    img[:, :, 20:] = 1.0  # right half white
    out = frames.resize_frames(img, 20, 60, method)
    assert out.shape == (2, 60, 20, 3)
    assert out[:, :, :8].max() < 0.02 and out[:, :, 12:].min() > 0.98  # no crop: the edge stays centred
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2).float()
    small = frames.resize_frames(checker[None, :, :, None].expand(1, 64, 64, 3), 16, 16, method)
    assert (small - 0.5).abs().max().item() < 0.05  # antialiased: no aliasing pattern


# --------------------------------------------------------------------------- colour matching


def test_lab_conversion():
    rgb = torch.rand(1000, 3)
    assert (color_match.lab_to_srgb(color_match.srgb_to_lab(rgb)) - rgb).abs().max().item() < 1e-4
    white = color_match.srgb_to_lab(torch.ones(3))
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-3)
    red = color_match.srgb_to_lab(torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.02)


@pytest.mark.parametrize("method", ["mean_std_lab", "mean_std_rgb"])
def test_match_colors(method):
    # mid-range colours, so the match needs no clipping to the RGB gamut
    reference = moving_pattern(4) * 0.5 + 0.25
    drifted = moving_pattern(6)[..., [1, 2, 0]] * 0.4 + torch.tensor([0.35, 0.25, 0.3])
    matched = color_match.match_colors(drifted, reference, method)
    assert matched.shape == drifted.shape
    got_mean, got_std = color_match.channel_stats(matched, method)
    ref_mean, ref_std = color_match.channel_stats(reference, method)
    before_mean, _ = color_match.channel_stats(drifted, method)
    tol, drift = (0.05, 3.0) if method == "mean_std_lab" else (5e-4, 0.03)  # Lab units are ~100x RGB's
    assert (got_mean - ref_mean).abs().max().item() < tol
    assert (got_std - ref_std).abs().max().item() < tol
    assert (before_mean - ref_mean).abs().max().item() > drift  # there was something to fix

    assert torch.equal(color_match.match_colors(drifted, reference, method, strength=0.0), drifted)
    assert torch.equal(color_match.match_colors(drifted, reference, "none"), drifted)
    half = color_match.match_colors(drifted, reference, method, strength=0.5)
    assert torch.allclose(half, (drifted + matched) / 2, atol=1e-5)
    with_alpha = torch.cat([drifted, torch.full_like(drifted[..., :1], 0.25)], dim=-1)
    out = color_match.match_colors(with_alpha, reference, method)
    assert torch.allclose(out[..., :3], matched, atol=1e-6) and torch.all(out[..., 3] == 0.25)


def test_crossfade():
    a = torch.zeros(3, 4, 4, 3)
    b = torch.ones(3, 4, 4, 3)
    mixed = color_match.crossfade(a, b)
    assert torch.allclose(mixed[:, 0, 0, 0], torch.tensor([0.25, 0.5, 0.75]))
    joined = color_match.join_with_crossfade(torch.zeros(5, 4, 4, 3), torch.ones(6, 4, 4, 3), 3)
    assert joined.shape[0] == 8
    assert joined[:2].max() == 0 and joined[-3:].min() == 1
    with pytest.raises(ValueError, match="equal shapes"):
        color_match.crossfade(a, b[:2])
