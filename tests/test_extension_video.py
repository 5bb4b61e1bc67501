"""SkyReels-V3 video extension end to end on the tiny official V3 DiT of the golden cases and a
toy VAE: pieces, conditioning placement, the next prefix, resume, shot switching with and
without a VRAM budget, and the nodes."""
import os

import pytest
import torch

from fakes import ToyVAE
from golden_cases import DEFAULT_DIR, load_case
from skyreels_pack import host
from skyreels_pack.models.wan.dit import LatentSegment
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit
from skyreels_pack.sampling.chunk_store import CollectFrames
from skyreels_pack.sampling.extension_input import quantize
from skyreels_pack.sampling.extension_plan import plan_shot_switch, plan_single_shot
from skyreels_pack.sampling.extension_video import ExtensionConditioning, ExtensionSettings, extend_video
from skyreels_pack.sampling.guidance import ModelInputs
from skyreels_pack.sampling.video_codec import VideoCodec

SIZE = dict(width=32, height=32)


@pytest.fixture(scope="module")
def v3():
    case = load_case(os.path.join(DEFAULT_DIR, "extension", "v3_shot_dit_f4_p3.safetensors"))
    cfg = WanDiTConfig.from_official(case.config)
    model, _ = load_wan_dit(case.weights, config=cfg, weight_dtype="fp32")
    return model, case.inputs["context"]


def video(frames=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(frames, 40, 56, 3, generator=g)


class Spy:
    """Records every model call (the noisy x, t and where the conditioning frames sit)."""

    def __init__(self, model):
        self.model, self.calls = model, []
        self.orig = model.forward

    def __enter__(self):
        def forward(x, t, context, **kw):
            segs = kw.get("segments", ())
            self.calls.append(dict(x=x.clone(), t=t.clone(), offset=kw.get("rope_frame_offset", 0),
                                   segments=[(s.latents.clone(), s.rope_start, s.t) for s in segs]))
            return self.orig(x, t, context, **kw)

        self.model.forward = forward
        return self

    def __exit__(self, *exc):
        del self.model.forward


def run(v3, mode="single_shot", duration=6, clip=None, codec=None, **kw):
    model, ctx = v3
    sink = CollectFrames()
    codec = codec or VideoCodec(ToyVAE())
    s = ExtensionSettings(mode=mode, duration=duration, steps=2, **SIZE)
    res = extend_video(model, codec, s, ExtensionConditioning(video() if clip is None else clip, [ModelInputs(ctx)]),
                       sink, **kw)
    return res, sink, codec


def test_plan_rules_of_the_readme():
    assert plan_single_shot(3).output_frames == plan_single_shot(4).output_frames == 100
    assert [p.new_latents for p in plan_single_shot(11).pieces] == [33, 33, 1]
    assert plan_single_shot(5).output_frames == 132 and plan_single_shot(10).output_frames == 264
    assert plan_single_shot(30).output_frames == 728 and plan_single_shot(60).output_frames > 1400
    assert [plan_shot_switch(d).output_frames for d in (2, 3, 4, 5)] == [49, 73, 97, 121]
    for bad in (0, 1, 6):
        with pytest.raises(ValueError):
            plan_shot_switch(bad)
    with pytest.raises(ValueError):
        plan_single_shot(0)


def test_segments_must_match_the_latent_and_refuse_causal_attention(v3):
    model, ctx = v3
    x = torch.randn(1, 16, 2, 4, 4)
    with pytest.raises(ValueError, match="must match"):
        model(x, torch.tensor([500]), ctx, segments=[LatentSegment(torch.randn(1, 16, 2, 4, 6))])
    with pytest.raises(ValueError, match="block-causal"):
        model(x, torch.tensor([500]), ctx, causal_block_size=1, segments=[LatentSegment(torch.randn(1, 16, 1, 4, 4))])


def test_single_shot_pieces_conditioning_and_next_prefix(v3):
    model, _ = v3
    codec = VideoCodec(ToyVAE())
    encoded = []
    orig_encode = codec.encode
    codec.encode = lambda frames: (encoded.append(frames.clone()), orig_encode(frames))[1]
    clip = video(30)
    with Spy(model) as spy:
        res, sink, _ = run(v3, duration=6, clip=clip, codec=codec)
    assert [p.new_latents for p in res.plan.pieces] == [33, 9]
    assert sink.images().shape == (168, 32, 32, 3) and res.frames_made == 168
    assert len(spy.calls) == 4  # 2 pieces x 2 steps, guidance 1: one pass
    for call, L in zip(spy.calls, (33, 33, 9, 9)):
        assert call["x"].shape[2] == L and call["offset"] == 7 and call["t"].numel() == 1
        (lat, start, t), = call["segments"]
        assert lat.shape[2] == 7 and start == 0 and t == 0.0
    # piece 1 starts from the input's last 25 frames, piece 2 from the last 25 frames piece 1 made (8-bit)
    assert len(encoded) == 2
    assert torch.equal(encoded[0], quantize(res.input.prefix)) and encoded[0].shape[0] == 25
    assert torch.equal(encoded[1], quantize(sink.frames[0][-25:]))
    # every piece draws its own noise (the official loop would reuse the first 9 frames' noise)
    assert not torch.allclose(spy.calls[0]["x"][:, :, :9], spy.calls[2]["x"])
    assert res.input.video.shape == (30, 32, 32, 3)


def test_shot_switch_places_the_context_at_1024(v3):
    model, _ = v3
    with Spy(model) as spy:
        res, sink, _ = run(v3, mode="shot_switch", duration=2, clip=video(12))
    assert sink.images().shape[0] == 49 and res.plan.condition_frames == 9
    for call in spy.calls:
        assert call["x"].shape[2] == 13 and call["offset"] == 0
        (lat, start, t), = call["segments"]
        assert lat.shape[2] == 3 and start == 1024 and t == 0.0
    with pytest.raises(ValueError, match="at least 9"):
        run(v3, mode="shot_switch", duration=2, clip=video(8))
    # exactly the condition frames is enough (the official code needs one more: a deliberate difference)
    assert run(v3, mode="shot_switch", duration=2, clip=video(9))[1].images().shape[0] == 49


def test_cancel_and_resume_continue_exactly(v3, tmp_path):
    model, _ = v3
    full = run(v3, duration=6)[1].images()
    folder = str(tmp_path / "pieces")
    calls = {"n": 0}
    orig = model.forward

    def cancelling(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the first step of the second piece
            host.request_interrupt()
        return orig(*a, **kw)

    model.forward = cancelling
    try:
        with pytest.raises(host.Interrupted):
            run(v3, duration=6, chunk_dir=folder)
    finally:
        del model.forward
        host.clear_interrupt()
    assert sorted(f for f in os.listdir(folder) if f.endswith(".safetensors")) == ["chunk_0000.safetensors"]
    res, sink, _ = run(v3, duration=6, chunk_dir=folder)
    assert res.resumed_pieces == 1
    again = sink.images()
    assert again.shape == full.shape
    assert torch.equal(again[:132], quantize(full[:132]))  # replayed from the folder (8-bit)
    assert torch.equal(again[132:], full[132:])            # made again from the same 8-bit prefix


def test_shot_switch_with_and_without_a_vram_budget(v3):
    from test_memory import FakeDevice

    from skyreels_pack.memory import offload

    model, _ = v3
    plain = run(v3, mode="shot_switch", duration=2, clip=video(12))[1].images()
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", 1e-4, latent_shape=(16, 4, 4), transfer=fake)
    try:
        assert plan is not None and plan.streamed  # every block streams through the fake device
        streamed = run(v3, mode="shot_switch", duration=2, clip=video(12))[1].images()
    finally:
        offload.release(model)
    assert model.block_hooks is None and fake.current == 0  # released: no device copies left
    assert len(fake.fetched) >= 2 * len(plan.streamed)  # both steps streamed the blocks
    assert torch.equal(plain, streamed)


# --------------------------------------------------------------------------- nodes


def _handles(v3, variant):
    from skyreels_pack.nodes import handles

    model, _ = v3
    model.config.variant = variant
    return (handles.DiTHandle(model, model.config, "/m/SkyReels-V3-V2V-14B/" + variant),
            handles.VAEHandle(ToyVAE(), "toy"))


def _positive(v3):
    from skyreels_pack.sampling.conditioning import make_conditioning

    return make_conditioning([v3[1]])


def test_nodes_output_new_frames_and_the_whole_video(v3):
    from skyreels_pack.nodes.extension import V3ExtendVideo, V3ShotSwitch

    dit, vae = _handles(v3, "v3_shot")
    clip = video(12)
    new, whole = V3ShotSwitch().extend(dit, vae, _positive(v3), clip, 2, "720P", 32, 48, 1, 2, 8.0, 1.0)
    assert new.shape == (49, 48, 32, 3) and whole.shape == (12 + 49, 48, 32, 3)
    assert torch.equal(whole[12:], new)
    dit, vae = _handles(v3, "v3_extend")
    new2, whole2 = V3ExtendVideo().extend(dit, vae, _positive(v3), whole, 1, "720P", 32, 48, 1, 2, 8.0, 1.0)
    assert new2.shape[0] == 36 and torch.equal(whole2[:61], quantize(whole))  # a chain keeps all before (8-bit)


def test_node_checks():
    from skyreels_pack.nodes.base import NodeError
    from skyreels_pack.nodes.extension import V3CutPrompt, V3ExtendVideo

    assert V3ExtendVideo.VALIDATE_INPUTS(width=0, height=0) is True
    assert "both" in V3ExtendVideo.VALIDATE_INPUTS(width=128, height=0)
    assert "multiple of 16" in V3ExtendVideo.VALIDATE_INPUTS(width=120, height=96)
    assert V3CutPrompt().make("[ZOOM_OUT_CUT]", "[ZOOM_IN_CUT]  A wide shot.") == ("[ZOOM_OUT_CUT] A wide shot.",)
    assert V3CutPrompt().make("none", "[CUT_AWAY] The door.") == ("The door.",)
    with pytest.raises(NodeError):
        V3CutPrompt().make("[DOLLY]", "x")


def test_shipped_workflows_carry_the_official_v3_defaults():
    from skyreels_pack.cli import workflow as wf
    from skyreels_pack.cli.shipped.extension import SHIPPED
    from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflows")
    durations = {}
    for name in SHIPPED:
        api = wf.to_api(wf.load(os.path.join(root, name)), NODE_CLASS_MAPPINGS)
        for n in api.values():
            i = n["inputs"]
            if n["class_type"] in ("SkyReelsV3ExtendVideo", "SkyReelsV3ShotSwitch"):
                assert (i["steps"], i["shift"], i["cfg"], i["seed"], i["resolution"]) == (8, 8.0, 1.0, 42, "720P")
                assert (i["width"], i["height"]) == (0, 0)
                durations.setdefault(name, []).append((n["class_type"], i["duration"]))
                model = api[i["model"][0]]["inputs"]
                want = "v3_extend" if n["class_type"] == "SkyReelsV3ExtendVideo" else "v3_shot"
                assert model["variant"] == want and model["model"].endswith(
                    "transformer" if want == "v3_extend" else "shot_transformer")
            if n["class_type"] == "SkyReelsTextEncode":
                assert i["negative_prompt"] == ""
            if n["class_type"] == "SkyReelsV3CutPrompt":
                assert i["cut_type"] == "[ZOOM_IN_CUT]"
    assert durations["skyreels_v3_extend.json"] == [("SkyReelsV3ExtendVideo", 10)]
    assert durations["skyreels_v3_shot_switch.json"] == [("SkyReelsV3ShotSwitch", 5)]
    assert sorted(durations["skyreels_v3_extend_cut_extend.json"]) == [
        ("SkyReelsV3ExtendVideo", 5), ("SkyReelsV3ExtendVideo", 5), ("SkyReelsV3ShotSwitch", 5)]
