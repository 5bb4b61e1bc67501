"""Golden runners for SkyReels-V3 video extension: the DiT modes, the input preparation and the
frame bookkeeping of single-shot extension and shot switching."""
import pytest
import torch

from skyreels_pack.media.aspect_buckets import bucket_size, closest_ratio, table_for
from skyreels_pack.models.wan.dit import LatentSegment
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit
from skyreels_pack.sampling.extension_input import prepare_input, split_prefix, to_model_video, to_uint8
from skyreels_pack.sampling.extension_plan import plan_shot_switch, plan_single_shot, split_seconds
from skyreels_pack.sampling.sigmas import flow_schedule

FAMILY = "extension"


def _model(case):
    cfg = WanDiTConfig.from_official(case.config)
    model, _ = load_wan_dit(case.weights, config=cfg, weight_dtype="fp32", compute_dtype=torch.float32)
    return model


def run_ext_dit(case):
    """Single shot: the official [prefix; noise] input with t = 0 on the prefix, and the same
    as a latent segment (prefix at RoPE 0, noise from P), which is how the sampler calls it."""
    model = _model(case)
    inp = case.inputs
    pre, lat, t = inp["prefix_latents"], inp["latents"], inp["timestep"]
    P = pre.shape[2]
    assert torch.equal(t[:, :P], torch.zeros_like(t[:, :P]))
    with torch.no_grad():
        full = model(torch.cat([pre, lat], dim=2), t, inp["context"])
        seg = model(lat, t[:, P:], inp["context"], rope_frame_offset=P, segments=[LatentSegment(pre, 0, 0.0)])
    torch.testing.assert_close(seg, full[:, :, P:], atol=1e-5, rtol=1e-5)
    return {"out": seg, "out_full": full}


def run_shot_dit(case):
    """Shot switching: the context latents as a segment at RoPE 1024 with t = 0."""
    model = _model(case)
    inp = case.inputs
    F = inp["latents"].shape[2]
    t = inp["timestep"]
    start = case.params["context_rope_start"]
    assert torch.equal(t[:, F:], torch.zeros_like(t[:, F:]))
    with torch.no_grad():
        out = model(inp["latents"], t[:, :F], inp["context"],
                    segments=[LatentSegment(inp["context_latents"], rope_start=start, t=0.0)])
    return {"out": out}


def run_ext_prep(case):
    p = case.params
    frames = case.inputs["frames"]
    n = p["num_condition_frames"]
    table = {k: tuple(v) for k, v in p["aspect_table"].items()}
    inp = prepare_input(frames.float() / 255, n, table)
    return {"prefix_video": to_model_video(to_uint8(inp.prefix)), "raw_video": to_uint8(inp.earlier),
            "size": torch.tensor([inp.height, inp.width], dtype=torch.int64)}


def _runs(layout):
    return [[int(v), int(c)] for v, c in layout]


def run_ext_plan(case):
    d = case.data
    for c in d["single_shot"]:
        if c.get("error"):
            with pytest.raises(ValueError):
                plan_single_shot(c["duration"])
            continue
        plan = plan_single_shot(c["duration"])
        assert split_seconds(c["duration"]) == c["pieces_seconds"], c["duration"]
        assert plan.output_frames == c["output_frames"], c["duration"]
        assert flow_schedule(8, 8.0).template() == c["scheduler_timesteps"]
        assert len(plan.pieces) == len(c["pieces"])
        for piece, want in zip(plan.pieces, c["pieces"]):
            where = "%d s, piece %d" % (c["duration"], piece.index)
            assert piece.seconds == want["seconds"], where
            assert piece.nominal_latents == want["nominal_latent_frames"], where
            assert piece.prefix_latents == want["prefix_latent_frames"], where
            assert plan.condition_frames == want["prefix_pixel_frames"], where
            assert piece.new_latents == want["new_latent_frames"], where
            assert piece.rest == want["rest_frames"], where
            assert piece.padding_after == want["padding_budget_after"], where
            assert piece.model_frames == want["model_input_latent_frames"], where
            layout = _runs(piece.timestep_layout(c["scheduler_timesteps"][0]))
            assert layout == want["timestep_layout_first_step"], where
            assert piece.decoded_frames == want["decoded_frames"], where
            assert piece.dropped_frames == want["dropped_frames"], where
            assert piece.kept_frames == want["kept_frames"], where
    for c in d["shot_switching"]:
        if c.get("error"):
            with pytest.raises(ValueError):
                plan_shot_switch(c["duration"])
            continue
        plan = plan_shot_switch(c["duration"])
        (piece,) = plan.pieces
        assert plan.condition_frames == c["condition_pixel_frames"]
        assert piece.prefix_latents == c["prefix_latent_frames"]
        assert piece.new_latents == c["noise_latent_frames"]
        assert _runs(piece.timestep_layout(c["scheduler_timesteps"][0])) == c["timestep_layout_first_step"]
        assert piece.decoded_frames == c["decoded_latent_frames"] * 4 - 3 == c["output_frames"]
        assert plan.output_frames == c["output_pixel_frames_requested"] == c["output_frames"]
        assert flow_schedule(8, 8.0).steps == c["model_calls"]
    for c in d["prefix_split"]:
        frames = torch.zeros(c["input_frames"], 2, 2, 3)
        n = c["num_condition_frames"]
        if c["input_frames"] < n:
            with pytest.raises(ValueError):
                split_prefix(frames, n)
            continue
        prefix, earlier = split_prefix(frames, n)
        assert prefix.shape[0] == n
        if c["error"] is None:
            assert (prefix.shape[0], earlier.shape[0]) == (c["prefix_frames"], c["raw_frames"])
        else:
            # deliberate difference: exactly n frames is accepted (the official code raises, V3-7)
            assert c["input_frames"] == n and earlier.shape[0] == 0
    for c in d["ext_resolution"]:
        table = table_for(c["resolution"])
        assert closest_ratio(c["video_height"], c["video_width"], table) == c["ratio_key"], c
        assert table[c["ratio_key"]] == (c["bucket_height"], c["bucket_width"]), c
        assert bucket_size(c["video_height"], c["video_width"], c["resolution"]) == (c["height"], c["width"]), c
    assert d["errors"] and "list" in d["errors"][0]["error"]  # V3-1: our forward takes segments instead
    return None


RUNNERS = {"v3_ext_dit": run_ext_dit, "v3_shot_dit": run_shot_dit, "v3_ext_prep": run_ext_prep,
           "v3_ext_plan": run_ext_plan}
