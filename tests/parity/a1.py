"""Golden runners for SkyReels-A1 (../shared/golden/a1): the transformer, the CogVideoX VAE and pose
guider, the sampler (one window and two fused windows), SigLIP, the face alignment and the
long-video frame plan.  The landmark driver kinds (issue 13) are in ``a1_driver.py``."""
import torch

from golden_cases import assert_close

from skyreels_pack.media.frames import resample_indices
from skyreels_pack.models.a1.face_align import FFHQ_TEMPLATE_512, align_face
from skyreels_pack.models.cogvideox.config import CogVideoXConfig
from skyreels_pack.models.cogvideox.loader import load_cogvideox_transformer
from skyreels_pack.models.cogvideox.vae import CogVideoXVAEConfig, VAETiling
from skyreels_pack.models.cogvideox.vae_loader import load_cogvideox_vae
from skyreels_pack.models.vision.siglip import load_siglip, preprocess
from skyreels_pack.sampling.a1_plan import plan_a1_video, short_control_indices
from skyreels_pack.sampling.a1_sampler import A1SampleSettings, sample_a1_window
from skyreels_pack.sampling.alphas import vp_schedule


def _dit(case):
    cfg = CogVideoXConfig.from_diffusers(case.config, face_embed_dim=case.config["face_embed_dim"],
                                         face_tokens=case.config["face_tokens"])
    model, _ = load_cogvideox_transformer(case.weights, config=cfg, weight_dtype="fp32")
    x = case.inputs["hidden_states"]
    _, frames, _, h, w = x.shape
    p = cfg.patch_size
    assert (case.params["pos_embedding_path"] == "learned_buffer") == (
        cfg.use_learned_positional_embeddings and case.params["pixel_frames"] == cfg.sample_frames)
    with torch.no_grad():
        out = model(x, case.inputs["timestep"], case.inputs["encoder_hidden_states"])
        cos, sin = model.rope(frames, h // p, w // p, "cpu")
        pos = model.positional_table(frames, h // p, w // p, "cpu")
    return {"out": out, "rope_cos": cos, "rope_sin": sin, "pos_embedding_used": pos}


def _vae(case):
    p = case.params
    vae, cfg = load_cogvideox_vae(case.weights, dtype=torch.float32, config=CogVideoXVAEConfig.from_diffusers(case.config))
    assert cfg.scaling_factor == p["scaling_factor"]
    tiling = VAETiling.official(cfg) if p["tiled"] else None
    if tiling is not None:
        assert [tiling.tile_height, tiling.tile_width] == p["tile_sample_min"]
    s = cfg.scaling_factor
    if p["mode"] == "decode":
        z = case.inputs["latents"].permute(0, 2, 1, 3, 4) / s
        video = vae.decode(z, tiling)
        frames = torch.round((video / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 4, 1)
        diff = (frames.int() - case.outputs["frames_uint8"].int()).abs().max().item()
        assert diff <= 1, "decoded frames differ by %d levels (1 allowed)" % diff
        return {"video": video}
    mean, logvar = vae.encode(case.inputs["video"], tiling)
    if p["mode"] == "image":
        latent = s * (mean + torch.exp(0.5 * logvar) * case.inputs["eps"])
    else:
        latent = s * mean
    return {"mean": mean, "logvar": logvar, "latent": latent}


def _fake_model(case):
    """The stand-in transformer of the sampler cases (README A1.3)."""
    W, b, g = case.inputs["fake_w"], case.inputs["fake_b"], case.inputs["fake_g"]

    def model(x, t, face):
        y = torch.einsum("ck,bfkhw->bfchw", W, x.float()) + b[None, None, :, None, None]
        y = y + g[None, None, :, None, None] * face.float().mean(dim=(1, 2))[:, None, None, None, None]
        return torch.tanh(y + 0.001 * t.float()[:, None, None, None, None])

    return model


def _settings(case):
    p = case.params
    assert p["scheduler_config"]["timestep_spacing"] == "trailing" and p["scheduler_config"]["rescale_betas_zero_snr"]
    return A1SampleSettings(steps=p["num_inference_steps"], guidance=p["guidance_scale"],
                            fusion_interval=tuple(p.get("fusion_interval", (3, 8))),
                            fusion_latents=p.get("overlap_frame_num", 8) // 4)


def _window(case, suffix, fusion, keep_cache):
    s = _settings(case)
    sf = case.params["scaling_factor"]
    image = sf * case.inputs["image_latent_raw"].permute(0, 2, 1, 3, 4)
    control = sf * case.inputs["control_latent_raw" + suffix].permute(0, 2, 1, 3, 4)
    per_step, inputs = [], []
    x, cache = sample_a1_window(_fake_model(case), case.inputs["noise" + suffix], control, image,
                                case.inputs["face_tokens"], s, fusion=fusion, keep_cache=keep_cache,
                                on_step=lambda i, inp, lat: (per_step.append(lat), inputs.append(inp)))
    out = {"latents" + suffix: x, "latents_per_step" + suffix: torch.stack(per_step),
           "model_inputs" + suffix: torch.stack(inputs).expand(-1, 2, -1, -1, -1, -1)}
    return out, cache


def _sampler(case):
    sched = vp_schedule(case.params["num_inference_steps"])
    out, _ = _window(case, "", None, False)
    out.update({"alphas_cumprod": sched.alphas_cumprod, "timesteps": sched.timesteps})
    return out


def _sampler_long(case):
    sched = vp_schedule(case.params["num_inference_steps"])
    out = {"alphas_cumprod": sched.alphas_cumprod, "timesteps": sched.timesteps}
    fusion = None
    windows = case.params["windows"]
    for k in range(windows):
        got, fusion = _window(case, "_%d" % k, fusion, keep_cache=k < windows - 1)
        out.update(got)
    return out


def _siglip(case):
    enc = load_siglip(case.weights, config=case.config)
    px = preprocess(case.inputs["face_uint8"].numpy(), enc.image_size)
    assert_close("siglip:pixel_values", px, case.outputs["pixel_values"], case.atol, case.rtol)
    # the model on the stored pixels, as the README advises, and on ours (identical here)
    return {"last_hidden_state": enc.encode_pixels(case.outputs["pixel_values"]), "pixel_values": px}


def _face_align(case):
    face, affine = align_face(case.inputs["image_rgb"].numpy(), case.inputs["landmarks_5"].numpy(),
                              case.params["face_size"])
    tol = case.params["image_level_tol"]
    diff = (torch.from_numpy(face).int() - case.outputs["face_rgb"].int()).abs().max().item()
    assert diff <= tol, "aligned face differs by %d levels (%d allowed)" % (diff, tol)
    return {"affine": torch.from_numpy(affine), "template": torch.from_numpy(FFHQ_TEMPLATE_512)}


def _long_plan(case):
    d = case.data
    p = d["params"]
    for r in d["resample"]:
        idx = resample_indices(r["num_source_frames"], r["fps"], p["target_fps"])
        assert idx == r["long_indices"], "12 fps resampling of %d frames at %r fps" % (r["num_source_frames"], r["fps"])
        assert short_control_indices(idx) == r["short_control_indices"], "inference.py control of %r fps" % r["fps"]
    for w in d["windows"]:
        plan = plan_a1_video(w["video_length"], p["frame_num_per_batch"], p["overlap_frame_num"])
        assert plan.stride == p["stride"] and plan.fusion_latents == len(p["fusion_weights"])
        calls = [{"cache_in": p["num_inference_steps"] if win.fused else 0, "control": list(win.control),
                  "is_last_batch": win.is_last, "num_frames": win.frame_count, "window": win.index}
                 for win in plan.windows]
        assert calls == w["calls"], "window calls for V = %d" % w["video_length"]
        assert plan.output(w["use_interpolation"]) == w["output"], "output frames for V = %d" % w["video_length"]
        assert (plan.padding or None) == w["padding_frame_num"], "padding for V = %d" % w["video_length"]
        if not w["use_interpolation"]:
            emitted = sum(b - a for a, b in (plan.frames_to_emit(k) for k in range(len(plan.windows))))
            assert emitted == w["video_length"]
    s = A1SampleSettings(steps=p["num_inference_steps"], fusion_interval=tuple(p["fusion_interval"]),
                         fusion_latents=p["overlap_frame_num"] // 4)
    assert s.fusion_steps() == p["fusion_steps"] and s.fusion_weights() == p["fusion_weights"]


FAMILY = "a1"

RUNNERS = {
    "a1_dit": _dit,
    "cogvideox_vae_encode": _vae,
    "cogvideox_vae_decode": _vae,
    "a1_sampler": _sampler,
    "a1_sampler_long": _sampler_long,
    "siglip_face": _siglip,
    "a1_face_align": _face_align,
    "a1_long_plan": _long_plan,
}

