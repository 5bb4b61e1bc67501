"""Golden runners for diffusion forcing: the timestep matrices and a whole chunk."""
import pytest
import torch

from skyreels_pack.sampling.df_schedule import DFScheduleError, df_schedule, expected_rows
from skyreels_pack.sampling.sigmas import flow_schedule


def run_schedule(case):
    data = case.data
    assert data["cases"], "no schedule cases"
    for i, c in enumerate(data["cases"]):
        p = c["params"]
        template = flow_schedule(p["num_steps"], p["shift"]).template()
        assert template == c["timesteps"], "case %d: template differs" % i
        s = df_schedule(p["num_latent_frames"], template, p["ar_step"], p["num_prefix_latent_frames"],
                        p["causal_block_size"])
        where = "case %d %s" % (i, p)
        assert s.rows == c["num_rows"], where
        assert s.step_matrix.tolist() == c["step_matrix"], where
        assert s.step_index.tolist() == c["step_index"], where
        assert s.update_mask.int().tolist() == c["update_mask"], where
        assert all(v == [0, p["num_latent_frames"]] for v in c["valid_interval"]), where
        c_ = p["causal_block_size"]
        assert s.rows == expected_rows(p["num_steps"], p["num_latent_frames"] // c_,
                                       p["num_prefix_latent_frames"] // c_, p["ar_step"]), where
    for e in data["errors"]:
        p = e["params"]
        template = flow_schedule(p["num_steps"], p["shift"]).template()
        with pytest.raises(DFScheduleError):
            df_schedule(p["num_latent_frames"], template, p["ar_step"], p["num_prefix_latent_frames"],
                        p["causal_block_size"])
    return None


FAMILY = "wan"

RUNNERS = {"df_schedule": run_schedule}


def run_chunk(case):
    from skyreels_pack.models.wan.dit_config import WanDiTConfig
    from skyreels_pack.models.wan.dit_loader import load_wan_dit
    from skyreels_pack.sampling.df_chunk import DFChunkSettings, sample_df_chunk
    from skyreels_pack.sampling.guidance import Denoiser, ModelInputs

    p = case.params
    inp = case.inputs
    model, _ = load_wan_dit(case.weights, config=WanDiTConfig.from_official(case.config), weight_dtype="fp32",
                            compute_dtype=torch.float32)
    sched = flow_schedule(p["num_steps"], p["shift"])
    assert sched.template() == p["timesteps"]
    fps = int(inp["fps"][0])
    assert fps == p["fps_index"]
    den = Denoiser(model, ModelInputs(inp["context_cond"], fps=fps), ModelInputs(inp["context_uncond"], fps=fps),
                   p["guidance_scale"] if p["guidance_scale"] > 1 else 1.0)
    n_pre = p["num_prefix_latent_frames"]
    latents = inp["noise"].clone()
    if n_pre:
        latents[:, :, :n_pre] = inp["prefix_latents"]
    seen_x, seen_t = [], []
    with torch.no_grad():
        out = sample_df_chunk(den, latents, n_pre, sched,
                              DFChunkSettings(ar_step=p["ar_step"], causal_block_size=p["causal_block_size"],
                                              addnoise_condition=p["addnoise_condition"]),
                              end_latent=inp.get("end_latent") if p["end_frame"] else None,
                              on_row=lambda r, x, t: (seen_x.append(x[0].clone()), seen_t.append(t[0].clone())))
    if n_pre:
        assert torch.equal(out[:, :, :n_pre], inp["prefix_latents"]), "prefix frames changed"
    return {"latents": out, "model_input_latents": torch.stack(seen_x), "model_timesteps": torch.stack(seen_t)}


RUNNERS["df_chunk"] = run_chunk
