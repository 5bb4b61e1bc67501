"""Golden runners for SkyReels-V3 talking avatar (A2V): DiT, audio projection, wav2vec2 front end,
loudness, sampler, guidance, colour match and the long-video plan."""
import torch

from golden_cases import assert_close
from skyreels_pack.models.wan.audio_adapter import AudioAdapterConfig, AudioProjModel, gather_windows
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit
from skyreels_pack.sampling.avatar_plan import PORTRAIT, plan_avatar, window_features
from skyreels_pack.sampling.conditioning import fit_context


def _compare(case, got):
    """Compare every stored output, with the per-output tolerances of ``tolerances``."""
    import json

    tol = json.loads(case.meta.get("tolerances") or "{}")
    assert set(got) == set(case.outputs), "outputs %s, the case stores %s" % (sorted(got), sorted(case.outputs))
    for name, value in got.items():
        t = tol.get("outputs." + name, {})
        expected = case.outputs[name]
        if not expected.is_floating_point() and "atol" in t:  # uint8 within a tolerance
            value, expected = value.double(), expected.double()
        assert_close("%s:%s" % (case.name, name), value, expected, float(t.get("atol", case.atol)),
                     float(t.get("rtol", case.rtol)))


# --------------------------------------------------------------------------- DiT and audio projection


def run_dit(case):
    cfg = WanDiTConfig.from_official(case.config)
    model, detected = load_wan_dit(case.weights, weight_dtype="fp32", compute_dtype=torch.float32)
    assert detected.audio == cfg.audio, "audio adapter from the shapes: %s, config: %s" % (detected.audio, cfg.audio)
    model, _ = load_wan_dit(case.weights, config=cfg, weight_dtype="fp32", compute_dtype=torch.float32)
    i = case.inputs
    context = fit_context(i["context"], cfg.text_dim, cfg.text_len)  # the official model zero-pads to text_len
    with torch.no_grad():
        out = model(i["x"], i["t"], context, clip_fea=i["clip_fea"], y=i["y"], audio=i["audio"])
    return {"out": out}


def run_audio_proj(case):
    c, p = case.config, case.params
    cfg = AudioAdapterConfig(window=c["seq_len"], vae_scale=p["vae_scale"], layers=c["blocks"], channels=c["channels"],
                             intermediate_dim=c["intermediate_dim"], output_dim=c["output_dim"],
                             context_tokens=c["context_tokens"], norm_output=c["norm_output_audio"])
    assert cfg.window_vf == c["seq_len_vf"]
    proj = AudioProjModel(cfg)
    proj.load_state_dict({k[len("audio_proj."):]: v for k, v in case.weights.items()})
    features = case.inputs["features"]
    plan = plan_avatar(p["num_features"], p["frame_num"], p["motion_frame"], p["drop_frame"])
    windows = torch.stack([window_features(features, plan.audio_frames(s)) for s in p["window_starts"]])
    first, latter = gather_windows(windows, cfg.vae_scale)
    with torch.no_grad():
        tokens = proj(windows)
    return {"windows": windows, "first": first, "latter": latter, "tokens": tokens}


# --------------------------------------------------------------------------- the long-video plan


def _ref(r):
    return r if r == PORTRAIT else list(r)


def _clip_json(plan, clip):
    mask = " ".join("".join(str(v) for v in m) for m in clip.latent_mask(plan.frame_num))
    return {
        "role": clip.role, "window": clip.window, "audio_start": clip.audio_start, "audio_frames": clip.audio_frames,
        "text": clip.text, "clip_image": _ref(clip.clip_image), "motion_frames": [_ref(r) for r in clip.motion_frames],
        "zero_frames": clip.zero_frames, "pseudo_keyframe_frames": [_ref(r) for r in clip.pseudo_keyframes],
        "mask": mask, "motion_latents_injected": clip.motion_latents,
    }


class _CountingNoise:
    def __init__(self):
        self.draws = 0

    def randn(self, shape, device="cpu"):
        self.draws += 1
        return torch.zeros(shape)


def _sampled(clip, steps, frame_num):
    """(fresh-noise draws, model calls) of one clip through the real sampler with the shipped 1 / 1
    guidance, on a stub model."""
    from skyreels_pack.sampling.a2v_sampler import sample_a2v_clip
    from skyreels_pack.sampling.guidance import AudioGuidance, ModelInputs
    from skyreels_pack.sampling.sigmas import a2v_schedule

    latent = (frame_num - 1) // 4 + 1
    stub = lambda x, t, context, **kw: torch.zeros_like(x)  # noqa: E731
    guide = AudioGuidance(stub, ModelInputs(torch.zeros(1)), ModelInputs(torch.zeros(1)), torch.ones(1), 1.0, 1.0)
    noise = _CountingNoise()
    motion = torch.zeros(1, 16, clip.motion_latents, 1, 1) if clip.motion_latents else None
    sample_a2v_clip(guide, torch.zeros(1, 16, latent, 1, 1), a2v_schedule(steps, 11.0), motion,
                    noise if motion is not None else None)
    return noise.draws, len(guide.calls)


def run_plan(case):
    for i, c in enumerate(case.data["cases"]):
        p = c["params"]
        plan = plan_avatar(p["num_audio_frames"], p["frame_num"], p["motion_frame"], p["drop_frame"],
                           p["max_frames_num"])
        got = {"is_clip": plan.is_clip, "video_length_real": plan.real, "video_length": plan.length,
               "padded_source": plan.padded_source, "keyframe_first_clip_frames": plan.keyframes,
               "output_segments": [list(s) for s in plan.output_segments()], "output_length": plan.output_length}
        for k, v in got.items():
            assert v == c[k], "case %d (%s): %s = %s, expected %s" % (i, p, k, v, c[k])
        assert len(plan.clips) == len(c["clips"]), "case %d: %d clips, expected %d" % (
            i, len(plan.clips), len(c["clips"]))
        for clip, want in zip(plan.clips, c["clips"]):
            mine = _clip_json(plan, clip)
            mine["injection_draws"], mine["model_calls"] = _sampled(clip, p["sampling_steps"], p["frame_num"])
            for k, v in mine.items():
                assert v == want[k], "case %d (%s) clip %d: %s = %s, expected %s" % (i, p, clip.index, k, v, want[k])
    for e in case.data.get("errors", []):
        p = e["params"]
        try:
            plan_avatar(p["T"], p.get("frame_num", 81), p.get("motion_frame", 5), p.get("drop_frame", 12),
                        p["max_frames_num"])
        except ValueError:
            continue
        raise AssertionError("the official code raises %s for %s; the plan accepted it" % (e["error"], p))


FAMILY = "avatar"

RUNNERS = {
    "v3_a2v_dit": run_dit,
    "v3_audio_proj": run_audio_proj,
    "v3_avatar_plan": run_plan,
}


# --------------------------------------------------------------------------- colour match


def run_color_match(case):
    from skyreels_pack.media.color_match import match_colors_per_frame

    src, ref = case.inputs["source"], case.inputs["reference"]           # [1, 3, T, H, W] in [-1, 1]
    frames = ((src + 1.0) * 0.5)[0].permute(1, 2, 3, 0)                 # IMAGE [T, H, W, 3]
    reference = ((ref + 1.0) * 0.5)[0].permute(1, 2, 3, 0)
    out = match_colors_per_frame(frames, reference, case.params["strength"])
    matched = (out * 2.0 - 1.0).permute(3, 0, 1, 2)[None]
    video = ((matched + 1) * 127.5).clamp(0, 255).to(torch.uint8)       # truncation, as the pipeline
    _compare(case, {"matched": matched, "video_uint8": video})


RUNNERS["v3_color_match"] = run_color_match


# --------------------------------------------------------------------------- audio front end


def run_loudness(case):
    from skyreels_pack.models.audio.loudness import normalize_loudness

    p = case.params
    res = normalize_loudness(case.inputs["waveform"], p["sampling_rate"], p["target_lufs"])
    got = {"normalized": res.waveform, "skipped": torch.tensor([int(res.skipped)])}
    if "loudness_lufs" in case.outputs:
        got["loudness_lufs"] = torch.tensor([res.loudness], dtype=torch.float64)
    _compare(case, got)


def run_wav2vec2(case):
    from skyreels_pack.models.audio.loudness import normalize_loudness
    from skyreels_pack.models.audio.wav2vec2 import load_wav2vec2

    p = case.params
    enc = load_wav2vec2(case.weights, config=case.config, do_normalize=p["do_normalize"])
    wave = case.inputs["waveform"]
    got = {}
    if p["loudness_norm"]:
        wave = normalize_loudness(wave, p["sampling_rate"], p["target_lufs"]).waveform
        got["normalized_waveform"] = wave
    debug = {}
    got["features"] = enc.features(wave, fps=p["fps"], debug=debug)
    got["input_values"] = debug["input_values"]
    got["extract_features"] = debug["extract_features"]
    assert got["features"].shape[0] == p["seq_len"]
    _compare(case, got)


RUNNERS["wav2vec2_loudness"] = run_loudness
RUNNERS["wav2vec2_features"] = run_wav2vec2


# --------------------------------------------------------------------------- sampler and guidance


class _StoredNoise:
    def __init__(self, draws):
        self.draws = list(draws)

    def randn(self, shape, device="cpu"):
        eps = self.draws.pop(0)[None]
        assert tuple(eps.shape) == tuple(shape)
        return eps.to(device)


def run_flow(case):
    from skyreels_pack.sampling.a2v_sampler import sample_a2v_clip
    from skyreels_pack.sampling.sigmas import a2v_schedule

    p, w = case.params, case.weights
    sched = a2v_schedule(p["sampling_steps"], p["shift"])
    seen_x, seen_t = [], []

    def fake(x, t):
        seen_x.append(x[0].clone())
        seen_t.append(t.reshape(-1)[0].clone())
        tt = t.reshape(-1)[0]
        return (torch.einsum("oc,cfhw->ofhw", w["W"], x[0]) + w["u"].view(-1, 1, 1, 1) * torch.cos(tt / 7)
                + w["u2"].view(-1, 1, 1, 1) * (tt / 1000))[None]

    motion = noise = None
    if p["motion_injection"]:
        motion = case.inputs["motion_latents"][None]
        noise = _StoredNoise(case.inputs["motion_noise"])
    final = sample_a2v_clip(fake, case.inputs["x_init"][None], sched, motion, noise)
    if noise is not None:
        assert not noise.draws, "%d injection draws left unused" % len(noise.draws)
    assert [round(v, 3) for v in (sched.sigmas * 1000).tolist()] == [round(v, 3) for v in p["timesteps"]]
    return {"timesteps": sched.sigmas * 1000, "model_timesteps": torch.stack(seen_t),
            "model_inputs": torch.stack(seen_x), "final": final[0]}


def run_guidance(case):
    from skyreels_pack.sampling.guidance import AudioGuidance, ModelInputs

    p, i = case.params, case.inputs
    cond, neg = ModelInputs(context=torch.ones(1)), ModelInputs(context=-torch.ones(1))
    audio = torch.ones(1, 5, 5, 2, 3)

    def stub(x, t, context, clip_fea=None, y=None, audio=None):
        real_audio = bool(audio.abs().sum() > 0)
        if context is cond.context:
            return (i["v_cond"] if real_audio else i["v_drop_audio"])[None]
        return (i["v_drop_text"] if real_audio else i["v_uncond"])[None]

    g = AudioGuidance(stub, cond, neg, audio, p["text_guide_scale"], p["audio_guide_scale"])
    v = g(torch.zeros(1), torch.tensor([1000.0]))
    assert g.regime == p["regime"] and g.calls == p["model_calls"], (g.regime, g.calls)
    return {"v": v[0]}


RUNNERS["flow_euler_a2v"] = run_flow
RUNNERS["a2v_guidance"] = run_guidance
