"""Golden runners for SkyReels-V1 (HunyuanVideo): DiT, VAE, text encoders, sampling loop."""
import torch

from skyreels_pack.models.hunyuan.dit_config import HunyuanDiTConfig
from skyreels_pack.models.hunyuan.dit_loader import load_hunyuan_dit
from skyreels_pack.models.hunyuan.text_encoder import (CROP_START, LAYERS_SKIPPED, MAX_TEXT_TOKENS, PROMPT_TEMPLATE,
                                                       load_clip_l, load_llama_encoder)
from skyreels_pack.models.hunyuan.vae import HunyuanVAEConfig, OfficialTiling
from skyreels_pack.models.hunyuan.vae_loader import load_hunyuan_vae


def run_dit(case):
    declared = HunyuanDiTConfig.from_diffusers(case.config)
    assert HunyuanDiTConfig.from_original(__import__("json").loads(case.meta["original_config"])) == declared
    model, cfg = load_hunyuan_dit(case.weights, weight_dtype="fp32", compute_dtype=torch.float32,
                                  axes_dim=declared.axes_dim)
    assert cfg == declared, "config inferred from the weights %s differs from the case's %s" % (cfg, declared)
    assert model.naming == case.weights_format
    assert cfg.variant == case.kind.rsplit("_", 1)[-1]
    inp = case.inputs
    with torch.no_grad():
        out = model(inp["x"], inp["timestep"], inp["encoder_hidden_states"], inp["pooled_projections"],
                    guidance=inp["guidance"], text_mask=inp["encoder_attention_mask"],
                    image_latents=inp.get("image_latents"))
    return {"out": out}


def _vae(case):
    declared = HunyuanVAEConfig.from_diffusers(case.config)
    model, cfg = load_hunyuan_vae(case.weights, dtype=torch.float32, config=declared)
    p = case.params
    assert cfg.scaling_factor == p["scaling_factor"]
    model.tiling = OfficialTiling(
        use_tiling=p["use_tiling"], framewise=p["use_framewise_decoding"], sample_min=p["tile_sample_min_width"],
        sample_stride=p["tile_sample_stride_width"], sample_min_frames=p["tile_sample_min_num_frames"],
        sample_stride_frames=p["tile_sample_stride_num_frames"])
    assert p["tile_sample_min_height"] == p["tile_sample_min_width"]
    return model


def run_vae_encode(case):
    model = _vae(case)
    mean, logvar = model.posterior(model.encode_moments(case.inputs["video"]))
    sample = model.sample(mean, logvar, case.inputs["noise"])
    return {"mean": mean, "logvar": logvar, "sample": sample, "image_latents": model.scale(sample)}


def run_vae_decode(case):
    model = _vae(case)
    return {"video": model.decode(model.unscale(case.inputs["latents"]))}


def run_text(case):
    from transformers import CLIPTextConfig, LlamaConfig

    p = case.params
    assert (p["prompt_template"], p["crop_start"], p["max_sequence_length"]) == (PROMPT_TEMPLATE, CROP_START,
                                                                                MAX_TEXT_TOKENS)
    assert p["hidden_state_index"] == -(LAYERS_SKIPPED + 1)
    assert p["tokenizer_max_length"] == CROP_START + MAX_TEXT_TOKENS
    llama_w = {k[len("llama."):]: v for k, v in case.weights.items() if k.startswith("llama.")}
    clip_w = {k[len("clip."):]: v for k, v in case.weights.items() if k.startswith("clip.")}
    llama = load_llama_encoder(llama_w, weight_dtype="fp32", compute_dtype=torch.float32,
                               config=LlamaConfig(**case.config["llama"]), need_tokenizer=False)
    assert len(llama.model.layers) == case.config["llama"]["num_hidden_layers"] - LAYERS_SKIPPED
    clip = load_clip_l(clip_w, compute_dtype=torch.float32, config=CLIPTextConfig(**case.config["clip"]),
                       need_tokenizer=False)
    ids, mask = case.inputs["llama_input_ids"], case.inputs["llama_attention_mask"]
    embeds, out_mask = llama.encode_ids(ids, mask)
    # the production path: each prompt alone, unpadded, gives the valid rows exactly
    for b in range(ids.shape[0]):
        n = int(mask[b].sum())
        alone = llama.states(ids[b:b + 1, :n])[:, CROP_START:]
        torch.testing.assert_close(alone[0], embeds[b, :n - CROP_START], atol=1e-5, rtol=1e-5)
    return {"prompt_embeds": embeds, "prompt_attention_mask": out_mask,
            "pooled_prompt_embeds": clip.pooled(case.inputs["clip_input_ids"])}


class FakeHunyuan:
    """The golden's deterministic stand-in for the DiT (README V1.4); records what it was given."""

    def __init__(self, case):
        self.w = {k: case.inputs["fake_" + k] for k in ("Wx", "Wtxt", "Wpool", "bias")}
        self.timesteps, self.guidance = [], []
        self.device = torch.device("cpu")

    def __call__(self, x, t, text, pooled, guidance=None, text_mask=None, image_latents=None, cache=None):
        self.timesteps.append(t.clone())
        self.guidance.append(guidance.clone())
        hs = x if image_latents is None else torch.cat([x, image_latents], dim=1)
        m = text_mask.float()[..., None]
        mean = (text * m).sum(1) / m.sum(1)
        z = torch.einsum("oc,bcfhw->bofhw", self.w["Wx"], hs)
        z = z + (mean @ self.w["Wtxt"].T + pooled @ self.w["Wpool"].T + self.w["bias"])[:, :, None, None, None]
        tt, g = t.float().view(-1, 1, 1, 1, 1), guidance.float().view(-1, 1, 1, 1, 1)
        return (0.5 + tt / 1000 + 0.2 * torch.sin(tt / 40)) * torch.tanh(z) + 0.25 * (g / 1000) * hs[:, :16]


def run_flow(case):
    from skyreels_pack.sampling.flow_sampler import sample_flow
    from skyreels_pack.sampling.guidance import Denoiser, HunyuanInputs
    from skyreels_pack.sampling.sigmas import flow_schedule
    from skyreels_pack.sampling.video_sampler import SampleSettings, sample_video
    from skyreels_pack.models.hunyuan.conditioning import image_latents_for

    p, inp = case.params, case.inputs
    sched = flow_schedule(p["num_inference_steps"], p["shift"], "hunyuan")
    image = None
    if p["task"] == "i2v":
        image = image_latents_for(inp["image_latent_raw"], inp["noise"].shape[2])
    branch = lambda pre: HunyuanInputs(inp[pre + "prompt_embeds"], inp[pre + "pooled_prompt_embeds"],  # noqa: E731
                                       inp[pre + ("prompt_attention_mask" if not pre else "attention_mask")],
                                       p["embedded_guidance_scale"], image)
    cond, uncond = branch(""), branch("negative_")
    use_cfg = p["guidance_scale"] > 1
    model = FakeHunyuan(case)
    den = Denoiser(model, cond, uncond if use_cfg else None, p["guidance_scale"])
    xs = []
    with torch.no_grad():
        x = sample_flow(den, inp["noise"].clone(), sched, "euler", callback=lambda i, x: xs.append(x.clone()))
    # the node's path (sample_video) computes the same
    settings = SampleSettings(steps=p["num_inference_steps"], cfg=p["guidance_scale"], shift=p["shift"],
                              solver="euler", sigma_grid="hunyuan")
    again = sample_video(FakeHunyuan(case), tuple(inp["noise"].shape), cond, uncond if use_cfg else None, settings,
                         noise=inp["noise"])
    assert torch.equal(again, x)
    per_call = lambda values: torch.stack([torch.cat(values[i:i + 2][::-1]) if use_cfg else values[i]  # noqa: E731
                                           for i in range(0, len(values), 2 if use_cfg else 1)])
    out = {"latents": x, "x": torch.stack(xs), "sigmas": sched.sigmas, "timesteps": sched.timesteps,
           "model_timesteps": per_call(model.timesteps), "model_guidance": per_call(model.guidance)}
    if image is not None:
        out["image_latents"] = image
    return out


FAMILY = "v1"

RUNNERS = {
    "hunyuan_dit_t2v": run_dit,
    "hunyuan_dit_i2v": run_dit,
    "hunyuan_vae_encode": run_vae_encode,
    "hunyuan_vae_decode": run_vae_decode,
    "hunyuan_text": run_text,
    "flow_hunyuan": run_flow,
}
