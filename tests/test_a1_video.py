"""SkyReels-A1 long videos: windows, control frames, fusion plumbing, output length, resume after a
cancel (with a fake transformer and a fake codec, so it runs in a second)."""
import pytest
import torch

from skyreels_pack import host
from skyreels_pack.sampling import a1_video
from skyreels_pack.sampling.a1_video import A1VideoSettings, generate_a1_video
from skyreels_pack.sampling.chunk_store import CollectFrames

W, H = 32, 16


class FakeVAE:
    class config:
        scaling_factor = 0.7


class FakeCodec:
    """Latent frame f of a window carries the mean of its control frames; decode repeats it."""

    scaling_factor = 0.7

    def __init__(self):
        self.device = torch.device("cpu")
        self.vae = FakeVAE()
        self.control_calls = []

    def image_moments(self, image):
        return torch.zeros(1, 1, 16, H // 8, W // 8), torch.ones(1, 1, 16, H // 8, W // 8)

    def encode_control(self, frames):
        self.control_calls.append((frames[:, 0, 0, 0] * 255).round().long().tolist())
        first, rest = frames[:1], frames[1:]
        means = [first.mean()] + [rest[i:i + 4].mean() for i in range(0, rest.shape[0], 4)]
        return torch.stack(means).view(1, -1, 1, 1, 1).expand(1, len(means), 16, H // 8, W // 8).clone()

    def decode(self, latents):
        F = latents.shape[1]
        v = latents[0, :, 0, 0, 0]
        frames = torch.cat([v[:1], v[1:].repeat_interleave(4)])
        assert frames.shape[0] == 1 + 4 * (F - 1)
        return (frames.view(-1, 1, 1, 1).expand(-1, H, W, 3) * 0.1 + 0.5).clamp(0, 1).clone()


def fake_model(calls):
    def model(x, t, face):
        calls.append(int(t))
        if calls and len(calls) == getattr(model, "cancel_at", -1):
            host.request_interrupt()
        return torch.tanh(x[:, :, :16] * 0.5 + x[:, :, 16:32] + 0.1 * face.mean())
    return model


def control_video(driving):
    """Frame k has the grey level k / 255 (k = 0: the reference landmarks)."""
    levels = torch.arange(driving + 1).float() / 255
    return levels.view(-1, 1, 1, 1).expand(-1, H, W, 3).clone()


def run(driving, chunk_dir=None, calls=None, cancel_at=None, steps=4):
    calls = [] if calls is None else calls
    model = fake_model(calls)
    if cancel_at:
        model.cancel_at = cancel_at
    codec = FakeCodec()
    sink = CollectFrames()
    res = generate_a1_video(model, codec, A1VideoSettings(width=W, height=H, steps=steps, seed=5),
                            torch.full((1, H, W, 3), 0.5), control_video(driving),
                            torch.randn(1, 729, 8, generator=torch.Generator().manual_seed(0)),
                            sink, chunk_dir=chunk_dir)
    return res, sink, codec


def test_windows_control_frames_and_length(monkeypatch):
    seen = []
    real = a1_video.sample_a1_window

    def spy(*args, **kw):
        seen.append((kw["fusion"] is not None, kw["keep_cache"]))
        return real(*args, **kw)

    monkeypatch.setattr(a1_video, "sample_a1_window", spy)
    res, sink, codec = run(100)
    assert [len(w.control) for w in res.plan.windows] == [49, 49, 49]
    assert [f.shape[0] for f in sink.frames] == [48, 40, 12] and sink.images().shape == (100, H, W, 3)
    assert res.frames_made == 100
    # control frames: the reference frame, then driving frames s_k .. s_k + 47 (the last repeated)
    assert codec.control_calls[1] == [0] + list(range(41, 89))
    assert codec.control_calls[2] == [0] + list(range(81, 101)) + [100] * 28
    assert seen == [(False, True), (True, True), (True, False)]  # fusion from the 2nd window on
    # a single short window keeps frames 1..V
    res, sink, _ = run(7)
    assert len(res.plan.windows) == 1 and sink.images().shape[0] == 7


def test_cancel_and_resume_give_the_same_video(tmp_path):
    _, whole, _ = run(60, steps=3)
    folder = str(tmp_path / "windows")
    calls = []
    with pytest.raises(host.Interrupted):
        run(60, chunk_dir=folder, calls=calls, cancel_at=8, steps=3)  # 6 model calls per window (3 steps, CFG)
    assert (tmp_path / "windows" / "chunk_0000.safetensors").exists()
    assert not (tmp_path / "windows" / "chunk_0001.safetensors").exists()
    calls = []
    res, resumed, _ = run(60, chunk_dir=folder, calls=calls, steps=3)
    assert res.resumed_windows == 1 and len(calls) == 6  # only the second window was computed
    a, b = whole.images(), resumed.images()
    assert a.shape == b.shape == (60, H, W, 3)
    assert (a - b).abs().max() <= 0.5 / 255 + 1e-6  # saved frames are 8-bit
    with pytest.raises(ValueError, match="different run"):
        run(61, chunk_dir=folder, steps=3)  # other inputs: the folder is refused
