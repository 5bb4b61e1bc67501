"""Talking-avatar nodes: the sampler's checks and outputs, the fps contract, audio in sync in the saved mp4."""
import math
import os

import pytest
import torch

from avatar_fakes import ClipStub, contexts, features, portrait, tiny_a2v_dit
from fakes import ToyVAE
from skyreels_pack import host
from skyreels_pack.models.audio.features import AudioFeatures
from skyreels_pack.nodes import handles
from skyreels_pack.nodes.avatar import LoadAudio, TalkingAvatarSampler
from skyreels_pack.nodes.base import NodeError
from skyreels_pack.sampling import conditioning as cond

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES = 30


class _Clip:
    def __init__(self):
        self.model = torch.nn.Linear(1, 1)
        self.stub = ClipStub()

    def encode(self, image):
        return self.stub(image)


def _voice(seconds, rate=22050):
    t = torch.arange(int(seconds * rate)) / rate
    chirp = torch.sin(2 * math.pi * (200 + 300 * t) * t) * (t * 7 % 1 < 0.6)  # bursts, easy to line up
    return {"waveform": torch.stack([chirp, 0.5 * chirp])[None].float(), "sample_rate": rate}


def _inputs(model=None, frames=FRAMES, fps=25, per_frame=None):
    p, c, n = contexts()
    audio = _voice(frames / 25)
    feats = AudioFeatures(features(frames) if per_frame is None else torch.zeros(frames, 1, per_frame), fps,
                          frames / 25, audio)
    return dict(model=handles.DiTHandle(model or tiny_a2v_dit(), (model or tiny_a2v_dit()).config, "a2v"),
                vae=handles.VAEHandle(ToyVAE(), "vae"), clip_vision=handles.ClipVisionHandle(_Clip(), "clip"),
                positive=cond.make_conditioning([p]), negative=cond.make_conditioning([n]),
                portrait=portrait(48, 40), audio_features=feats, preset="distilled", resolution="480P", seed=1,
                later_windows="official", connection=cond.make_conditioning([c]),
                options=handles.AvatarOptions(steps=1, width=32, height=32, frames_per_window=17, drop_frames=4))


def test_sampler_outputs_frames_audio_in_sync_and_25_fps(tmp_path):
    from skyreels_pack.media.audio_io import load_audio
    from skyreels_pack.media.video_io import probe_video
    from skyreels_pack.nodes.media import SaveVideo

    kw = _inputs()
    images, audio, fps = TalkingAvatarSampler().sample(**kw)
    assert images.shape == (FRAMES, 32, 32, 3) and fps == 25.0
    src = kw["audio_features"].audio
    assert audio["sample_rate"] == src["sample_rate"]
    assert audio["waveform"].shape[-1] == round(FRAMES / 25 * src["sample_rate"])
    host.set_output_dir(str(tmp_path))
    try:
        res = SaveVideo().save(images, fps, "avatar", 19, audio=audio)
    finally:
        host.set_output_dir(None)
    path = res["result"][0]
    info = probe_video(path)
    assert info["frames"] == FRAMES and abs(info["fps"] - 25) < 1e-6 and info["has_audio"]
    back = load_audio(path)
    seconds = back["waveform"].shape[-1] / back["sample_rate"]
    assert abs(seconds - FRAMES / 25) <= 1 / 25  # the sound lasts as long as the video, within one frame
    # and starts with it: the bursts line up with the input (best lag within 2 ms of 0)
    from skyreels_pack.media.audio_io import resample_waveform

    a = resample_waveform(src["waveform"][0, 0], src["sample_rate"], 8000)
    b = resample_waveform(back["waveform"][0, 0], back["sample_rate"], 8000)[: a.shape[0]]
    n = b.shape[0]
    lags = range(-80, 81)
    corr = [float((a[max(0, -k):n - max(0, k)] * b[max(0, k):n - max(0, -k)]).sum()) for k in lags]
    best = list(lags)[max(range(len(corr)), key=corr.__getitem__)]
    print("best lag", best, "samples at 8 kHz")
    assert abs(best) <= 16


def test_sampler_size_from_the_official_bucket():
    from skyreels_pack.sampling.avatar_plan import bucket_size

    assert bucket_size(1280, 720, "720P") == (720, 1280)
    assert bucket_size(720, 1280, "720P") == (1280, 720)
    assert bucket_size(640, 640, "480P") == (640, 640)
    assert bucket_size(832, 480, "480P") == (480, 832)
    assert bucket_size(640, 512, "720P") == (832, 1088)


def test_sampler_refuses_what_cannot_work():
    from fakes import tiny_df_dit

    s = TalkingAvatarSampler()
    dit, _, _ = tiny_df_dit()
    kw = _inputs()
    kw["model"] = handles.DiTHandle(dit, dit.config, "SkyReels-V2-DF-1.3B")
    with pytest.raises(NodeError, match="not a talking-avatar model"):
        s.sample(**kw)
    with pytest.raises(NodeError, match="25 fps"):
        s.sample(**_inputs(fps=24))
    with pytest.raises(NodeError, match="audio encoder that belongs"):
        s.sample(**_inputs(per_frame=12))
    kw = _inputs()
    kw["connection"] = None
    with pytest.raises(NodeError, match="connection prompt"):
        s.sample(**kw)
    kw["later_windows"] = "prompt_and_portrait"
    images, _, _ = s.sample(**kw)
    assert images.shape[0] == FRAMES


def test_load_audio_node_reads_the_example_voice():
    from skyreels_pack.cli.shipped.avatar_inputs import VOICE, VOICE_SECONDS

    host.set_input_dirs([os.path.join(ROOT, "workflows", "inputs")])
    try:
        assert VOICE in LoadAudio.INPUT_TYPES()["required"]["audio"][0]
        assert LoadAudio.VALIDATE_INPUTS(audio=VOICE) is True
        assert LoadAudio.VALIDATE_INPUTS(audio="nope.wav") is not True
        (audio,) = LoadAudio().load(VOICE, 1.0, 2.5)
        # a full path is read when it is inside the input folder (inputs are read there only)
        (full,) = LoadAudio().load(os.path.join(ROOT, "workflows", "inputs", VOICE), 0.0, 0.0)
    finally:
        host.set_input_dirs([])
    assert audio["sample_rate"] == 16000 and audio["waveform"].shape == (1, 1, 40000)
    assert full["waveform"].shape[-1] == VOICE_SECONDS * 16000
    # 8 s = 200 video frames: the keyframe pass and 3 windows of 81 frames
    from skyreels_pack.sampling.avatar_plan import plan_avatar

    assert plan_avatar(math.ceil(VOICE_SECONDS * 25)).windows == 3
