"""Golden runners for SkyReels-A2 (elements-to-video) and SkyReels-V3 reference-to-video."""
import json

import pytest
import torch

from skyreels_pack.models.refs import a2, encode, images, r2v
from skyreels_pack.models.vision.clip_loader import ImageEncoder, load_clip_vision_model
from skyreels_pack.models.vision.clip_vit import CLIPVisionConfig
from skyreels_pack.models.wan import vae_keys
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit
from skyreels_pack.models.wan.vae import WanVAE, WanVAEConfig
from skyreels_pack.models.wan.vae_loader import load_wan_vae
from skyreels_pack.sampling.guidance import ModelInputs, ReferenceDenoiser
from skyreels_pack.sampling.sigmas import flow_schedule
from skyreels_pack.sampling.flow_sampler import sample_flow


def _dit(case):
    """The case's DiT, loaded from its diffusers-named weights with the config inferred from them."""
    declared = WanDiTConfig.from_diffusers(case.config)
    _, inferred = load_wan_dit(dict(case.weights), weight_dtype="fp32", device="meta")
    for field in ("dim", "ffn_dim", "num_layers", "in_dim", "image_dim", "text_dim"):
        assert getattr(inferred, field) == getattr(declared, field), field
    # the head count is not in the shapes (a diffusers config.json gives it): use the case's
    model, _ = load_wan_dit(dict(case.weights), config=declared, weight_dtype="fp32", compute_dtype=torch.float32)
    return model


def _ref_uint8(case, i):
    return case.inputs["ref_%d" % i].to(torch.uint8).numpy()


# --------------------------------------------------------------------------- V3 R2V


def run_r2v_dit(case):
    model = _dit(case)
    inp = case.inputs
    F = inp["latents"].shape[2]
    with torch.no_grad():
        full = model(torch.cat([inp["latents"], inp["ref_latents"]], dim=2), inp["timestep"], inp["context"])
        # the sampler's path: the references ride in ModelInputs and their frames are dropped
        from skyreels_pack.sampling.guidance import Denoiser

        den = Denoiser(model, ModelInputs(inp["context"], time_refs=inp["ref_latents"]), None, 1.0)
        out = den(inp["latents"], inp["timestep"])
    assert out.shape[2] == F
    return {"out": out, "out_full": full}


class _Recorder(torch.nn.Module):
    """Wraps a DiT and keeps every output, in call order."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.outputs = []

    @property
    def device(self):
        return self.model.device

    def forward(self, *a, **k):
        out = self.model(*a, **k)
        self.outputs.append(out)
        return out


def run_r2v_guidance(case):
    p = case.params
    model = _Recorder(_dit(case))
    mean = torch.tensor(json.loads(case.meta["latents_mean"]))
    std = torch.tensor(json.loads(case.meta["latents_std"]))
    from skyreels_pack.models.wan import latent_space

    assert torch.equal(mean, torch.tensor(latent_space.LATENTS_MEAN))
    assert torch.equal(std, torch.tensor(latent_space.LATENTS_STD))
    raw = case.inputs["ref_latents_raw"]
    refs = r2v.assemble([latent_space.normalize(raw[i:i + 1]) for i in range(raw.shape[0])])
    sched = flow_schedule(p["num_inference_steps"], p["flow_shift"], "official")
    assert sched.template() == p["timesteps"]
    cond = ModelInputs(case.inputs["context_cond"], time_refs=refs)
    uncond = ModelInputs(case.inputs["context_uncond"], time_refs=refs)
    den = ReferenceDenoiser(model, cond, uncond, p["guidance_scale"], p["guidance_scale_img"])
    assert den.passes == (3 if p["guidance_scale"] > 1 and p["guidance_scale_img"] != 1 else 1)
    assert den.passes == p["passes_per_step"]
    x_in, guided = [], []

    def velocity(x, t):
        x_in.append(x.clone())
        v = den(x, t)
        guided.append(v)
        return v

    with torch.no_grad():
        x = sample_flow(velocity, case.inputs["noise"], sched, "unipc")
    n = den.passes
    per_pass = [torch.stack([o[:, :, :x.shape[2]] for o in model.outputs[k::n]]) for k in range(n)]
    out = {"latents": x, "ref_latents": refs, "timesteps": sched.timesteps, "sigmas": sched.sigmas,
           "model_input_latents": torch.stack(x_in), "v_cond": per_pass[0], "v_guided": torch.stack(guided)}
    if n == 3:
        out["v_uncond_txt"], out["v_uncond_all"] = per_pass[1], per_pass[2]
    return out


def run_r2v_prep(case):
    p = case.params
    W, H = p["width"], p["height"]
    out = {}
    for i in range(p["num_refs"]):
        arr = _ref_uint8(case, i)
        out["letterboxed_%d" % i] = torch.from_numpy(images.letterbox(arr, W, H))
        out["vae_input_%d" % i] = encode.r2v_vae_input(arr, W, H)
    raw = case.inputs["ref_latents_raw"]
    from skyreels_pack.models.wan import latent_space

    out["ref_latents"] = r2v.assemble([latent_space.normalize(raw[i:i + 1]) for i in range(raw.shape[0])],
                                      batch=p["batch"])
    return out


def run_r2v_buckets(case):
    d = case.data
    for res, table in d["tables"].items():
        assert {k: tuple(v) for k, v in table.items()} == r2v.BUCKETS[res], res
        assert list(table) == list(r2v.BUCKETS[res]), "key order decides ties"
    for c in d["cases"]:
        key = r2v.bucket_key(c["resolution"], c["image_width"], c["image_height"])
        assert key == c["ratio_key"], c
        assert r2v.bucket_size(c["resolution"], c["image_width"], c["image_height"]) == (c["height"], c["width"]), c
    for f in d["frames"]:
        assert r2v.frames_for_seconds(f["duration"]) == f["num_frames"]
        assert (f["num_frames"] - 1) // 4 + 1 == f["num_latent_frames"]
    from skyreels_pack.nodes.validation import check_size

    for e in d["errors"]:
        if e["what"] == "get_height_width_from_image":
            with pytest.raises(ValueError):
                r2v.bucket_size(e["resolution"], 1280, 720)
        elif e["what"] == "check_inputs":
            assert (check_size(e["width"], e["height"]) is True) == (e["error"] is None), e
        elif e["what"] == "prepare_latents":
            z = [torch.zeros(1, 16, 1, 2, 2)] * e["num_refs"]
            if e["error"] is None:
                assert r2v.assemble(z).shape[2] == r2v.MAX_REFS
            else:
                with pytest.raises(ValueError):
                    r2v.assemble(z)
        else:
            raise AssertionError("unknown error check %r" % e["what"])


# --------------------------------------------------------------------------- A2


def _a2_vae(case):
    cfg = WanVAEConfig.from_diffusers(json.loads(case.meta["vae_config"]))
    enc = {vae_keys.diffusers_to_official(k[len("vae."):], cfg.num_res_blocks): v
           for k, v in case.weights.items() if k.startswith("vae.")}
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in WanVAE(cfg).state_dict().items()
                  if k not in ("latents_mean", "latents_std")}
    assert set(enc) <= set(shapes), sorted(set(enc) - set(shapes))[:4]
    assert all(k.startswith(("encoder.", "conv1.")) for k in enc)
    # the case stores the encoder only (the decoder is never used): fill the rest with zeros
    full = {k: enc.get(k, torch.zeros(s)) for k, s in shapes.items()}
    model, got = load_wan_vae(full, dtype=torch.float32)
    assert got == cfg
    return model


def _a2_clip(case):
    tcfg = json.loads(case.meta["transformers_config"])
    sd = {k[len("image_encoder."):]: v for k, v in case.weights.items() if k.startswith("image_encoder.")}
    model, cfg = load_clip_vision_model(sd, weight_dtype="fp32", compute_dtype=torch.float32,
                                        num_heads=tcfg["num_attention_heads"])
    assert cfg == CLIPVisionConfig.from_transformers(tcfg)
    return ImageEncoder(model, cfg)


def run_a2_condition(case):
    p = case.params
    n = p["num_refs"]
    refs = [_ref_uint8(case, i) for i in range(n)]
    roles = list(a2.ROLES[:n]) if n == 3 else ["subject", "object"]
    proc = json.loads(case.meta["image_processor"])
    assert proc["size"]["shortest_edge"] == p["clip_size"] and p["clip_pad_size"] == images.A2_CLIP_PAD
    clip = _a2_clip(case)
    assert clip.config.image_size == p["clip_size"]
    tokens = encode.a2_clip_tokens(clip, refs)
    cond = encode.a2_condition(_a2_vae(case), refs, roles, p["width"], p["height"], p["num_frames"],
                               eps=case.inputs["eps"])
    return {"clip_pixel_values": encode.a2_clip_pixels(refs, p["clip_size"]),
            "image_embeds": tokens.repeat(p["batch"], 1, 1),
            "vae_images": cond.vae_images, "video_condition": cond.video,
            "posterior_mean": cond.posterior.mean, "posterior_logvar": cond.posterior.logvar,
            "latent_condition": cond.latent, "mask": cond.mask, "condition": cond.condition}


def run_a2_condition_layout(case):
    """The official 'before' layouts for 2 and 3 references (repeated or not), exactly.

    Deliberate differences, asserted here: 1 reference (every official branch raises) gives
    the I2V layout; too few frames for 3 references is a clear ValueError.  The 'after'
    branch (never used by infer.py) is not offered; its masks equal the 'before' ones."""
    for c in case.data["cases"]:
        n, T = c["num_refs"], c["num_frames"]
        if c["vae_combine"] == "after":
            if c["error"] is None:
                lay = a2.layout(n, T)
                assert (lay.mask, lay.num_latent_frames) == (c["mask"], c["num_latent_frames"]), c
            continue
        if c["error"] is None:
            lay = a2.layout(n, T, repeat=c["vae_repeat"])
            assert lay.pixel_frame_source == c["pixel_frame_source"], c
            assert lay.mask == c["mask"] and lay.num_latent_frames == c["num_latent_frames"], c
            assert c["condition_channels"] == 4 + 16
        elif n == 1:
            lay = a2.layout(1, T)
            assert lay.pixel_frame_source == [0] + [-1] * (T - 1)
            assert lay.mask == [[1, 1, 1, 1]] + [[0, 0, 0, 0]] * ((T - 1) // 4)
        else:
            with pytest.raises(ValueError):
                a2.layout(n, T, repeat=c["vae_repeat"])


def run_a2_dit(case):
    model = _dit(case)
    inp = case.inputs
    assert inp["context"].shape[1] == 512
    with torch.no_grad():
        out = model(inp["latents"], inp["timestep"], inp["context"], clip_fea=inp["image_embeds"], y=inp["condition"])
    return {"out": out}


FAMILY = "refs"

RUNNERS = {
    "v3_r2v_dit": run_r2v_dit,
    "v3_r2v_guidance": run_r2v_guidance,
    "v3_r2v_prep": run_r2v_prep,
    "v3_r2v_buckets": run_r2v_buckets,
    "a2_condition": run_a2_condition,
    "a2_condition_layout": run_a2_condition_layout,
    "a2_dit": run_a2_dit,
}

