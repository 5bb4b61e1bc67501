"""Long renders against hostile and careless use: chunk folders of other runs, resumes with
other models or inputs, exact latent-history resume, NaN that must stop a run at the step
where it appears, and prompts with more '|' parts than chunks.  Table-driven; every case
failed before the fix (the pixel-history resume, exact before too, is kept as a control)."""
import os

import pytest
import torch

from skyreels_pack import api, host
from skyreels_pack.models.wan.vae_tiling import VAETiling
from skyreels_pack.nodes import handles
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS as N
from skyreels_pack.sampling.chunk_store import ChunkFolder, CollectFrames
from skyreels_pack.sampling.df_video import DFConditioning, DFVideoSettings, generate_df_video
from skyreels_pack.sampling.guidance import Denoiser, ModelInputs
from skyreels_pack.sampling.sigmas import flow_schedule
from skyreels_pack.sampling.video_codec import VideoCodec
from skyreels_pack.sampling.video_sampler import SampleSettings, sample_video

DF_DIR = ("diffusion_models", "SkyReels-V2-DF-1.3B-540P")
T2V_DIR = ("diffusion_models", "SkyReels-V2-T2V-14B-540P")
VAE = ("vae", "wan_2.1_vae.safetensors")


@pytest.fixture(scope="module")
def models(demo_models):
    dit, cfg = api.load_wan_dit(os.path.join(demo_models, *DF_DIR), weight_dtype="fp32")
    other, _ = api.load_wan_dit(os.path.join(demo_models, *T2V_DIR), weight_dtype="fp32")
    vae, _ = api.load_wan_vae(os.path.join(demo_models, *VAE))
    g = torch.Generator().manual_seed(1)
    cond = torch.randn(1, 512, cfg.text_dim, generator=g)
    uncond = torch.randn(1, 512, cfg.text_dim, generator=g)
    return dict(dit=dit, other=other, vae=vae, cond=cond, uncond=uncond)


def settings(**kw):
    base = dict(width=32, height=32, num_frames=41, base_num_frames=17, overlap_history=5, steps=2, shift=8.0,
                guidance=5.0, addnoise_condition=20, seed=3, history="latent")
    base.update(kw)
    return DFVideoSettings(**base)


def conditioning(m, cond=None):
    return DFConditioning(prompts=[ModelInputs(m["cond"] if cond is None else cond)], negative=ModelInputs(m["uncond"]))


def run(m, s, chunk_dir=None, dit=None, codec=None, cond=None, **kw):
    sink = CollectFrames()
    res = generate_df_video(dit or m["dit"], codec or VideoCodec(m["vae"]), s, conditioning(m, cond), sink,
                            chunk_dir=chunk_dir, **kw)
    return res, sink.images()


# --------------------------------------------------------------------------- chunk folders


def _strays(folder):
    (folder / "chunk_0000.safetensors").write_bytes(b"another run's chunk")


def _damaged_manifest(folder):
    (folder / "run.json").write_text("{ not json")


def _list_manifest(folder):
    (folder / "run.json").write_text("[1, 2]")


FOLDERS = {
    "chunks_without_run_json": (_strays, "no run.json"),
    "damaged_run_json": (_damaged_manifest, "damaged run.json"),
    "run_json_not_an_object": (_list_manifest, "damaged run.json"),
}


@pytest.mark.parametrize("case", sorted(FOLDERS))
def test_a_chunk_folder_that_is_not_this_runs_is_refused_and_kept(tmp_path, case):
    prepare, words = FOLDERS[case]
    prepare(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=words):
        ChunkFolder(str(tmp_path), "abc")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def _permuted(m):
    return m["cond"].flip(1)  # the same values in another order: same sum, same sum of squares


def _other_dtype(m):
    d = api.load_wan_dit(os.path.join(os.path.dirname(m["dit"].source_path), os.path.basename(m["dit"].source_path)),
                         weight_dtype="bf16", compute_dtype=torch.float32)[0]
    return dict(dit=d)


RESUMES = {  # what changes between the interrupted run and the resume: the resume must refuse
    "other_dit_weights": lambda m: dict(dit=m["other"]),
    "other_dit_dtype": _other_dtype,
    "other_vae_weights": lambda m: dict(codec=VideoCodec(_perturbed_vae(m["vae"]))),
    "vae_tiles": lambda m: dict(codec=VideoCodec(m["vae"], tile=VAETiling(tile_px=16, overlap_px=8))),
    "same_sums_other_prompt": lambda m: dict(cond=_permuted(m)),
    "other_step_cache": lambda m: dict(identity={"cache": "teacache 0.3"}),
}


def _perturbed_vae(vae):
    import copy

    other = copy.deepcopy(vae)
    with torch.no_grad():
        other.decoder.head[2].weight.mul_(1.01)
    return other


@pytest.mark.parametrize("case", sorted(RESUMES))
def test_resume_with_anything_that_changes_the_result_is_refused(models, tmp_path, case):
    s = settings(num_frames=17)  # one chunk is enough: the folder records the run
    run(models, s, chunk_dir=str(tmp_path))
    change = RESUMES[case](models)
    with pytest.raises(ValueError, match="different run"):
        run(models, s, chunk_dir=str(tmp_path), **change)


# --------------------------------------------------------------------------- exact resume


def _interrupted_then_resumed(m, s, folder, monkeypatch):
    """Cancel during the second chunk (after the first was saved), then run again."""
    dit = m["dit"]
    real = type(dit).forward
    calls = {"n": 0}
    per_chunk = s.steps * 2  # synchronous: steps rows x 2 CFG branches; cancel in the second chunk

    def counting(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == per_chunk + 1:
            host.request_interrupt()
        return real(self, *a, **kw)

    monkeypatch.setattr(type(dit), "forward", counting)
    with pytest.raises(host.Interrupted):
        run(m, s, chunk_dir=str(folder))
    monkeypatch.setattr(type(dit), "forward", real)
    assert sorted(p.name for p in folder.glob("chunk_*.safetensors")) == ["chunk_0000.safetensors"]
    return run(m, s, chunk_dir=str(folder))


@pytest.mark.parametrize("history", ["latent", "pixel"])
def test_cancel_after_the_first_chunk_then_resume_gives_the_same_video(models, tmp_path, monkeypatch, history):
    s = settings(history=history)
    full, frames = run(models, s)
    res, resumed = _interrupted_then_resumed(models, s, tmp_path, monkeypatch)
    assert res.resumed_chunks == 1
    assert torch.equal(full.latents, res.latents)
    to8 = lambda f: (f.clamp(0, 1) * 255).round().to(torch.uint8)  # noqa: E731 - what the video file holds
    assert torch.equal(to8(frames), to8(resumed))


def test_a_resumed_decoder_stream_continues_exactly(models):
    """Bringing the causal decoder back decodes only its reach, however long the video was."""
    from skyreels_pack.models.wan.vae import StreamDecoder

    vae = models["vae"]
    z = torch.randn(1, 16, 44, 2, 2)
    whole = StreamDecoder(vae).feed(z)
    resumed = StreamDecoder(vae)
    assert resumed.reach() < 42  # so warm() below decodes only the last reach() latents
    resumed.warm(z[:, :, :42])
    assert torch.equal(resumed.feed(z[:, :, 42:]), whole[:, :, 1 + 4 * 41:])


# --------------------------------------------------------------------------- non-finite values


class _NaNAfter(torch.nn.Module):
    """A model whose output turns NaN from its ``n``-th call on."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    @property
    def device(self):
        return self.model.device

    def forward(self, x, *a, **kw):
        self.calls += 1
        v = self.model(x, *a, **kw)
        return v * float("nan") if self.calls >= self.n else v


def _non_finite_error():
    from skyreels_pack.sampling.finite import NonFiniteError

    return NonFiniteError


def test_nan_in_the_ordinary_loop_is_named_with_its_step(models):
    NonFiniteError = _non_finite_error()
    cond = ModelInputs(models["cond"])
    with pytest.raises(NonFiniteError, match="step 3 of 4"):
        sample_video(_NaNAfter(models["dit"], 3), (1, 16, 1, 4, 4), cond, None,
                     SampleSettings(steps=4, cfg=1.0, shift=8.0))


def test_nan_weights_stop_the_run_at_step_1(models, demo_models):
    NonFiniteError = _non_finite_error()
    dit, _ = api.load_wan_dit(os.path.join(demo_models, *DF_DIR), weight_dtype="fp32")
    with torch.no_grad():
        dit.blocks[0].ffn[0].weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="step 1 of 3"):
        sample_video(dit, (1, 16, 1, 4, 4), ModelInputs(models["cond"]), None, SampleSettings(steps=3, cfg=1.0))


def test_nan_in_a_diffusion_forcing_chunk_names_chunk_and_row(models):
    NonFiniteError = _non_finite_error()
    with pytest.raises(NonFiniteError, match="chunk 1 of 3: .* row 2 of"):
        run(models, settings(), dit=_NaNAfter(models["dit"], 3))


BAD_LIBRARY_NUMBERS = {
    "df_guidance_nan": lambda: DFVideoSettings(guidance=float("nan")).check(),
    "df_shift_nan": lambda: DFVideoSettings(shift=float("nan")).check(),
    "df_fps_inf": lambda: DFVideoSettings(fps=float("inf")).check(),
    "df_steps_float": lambda: DFVideoSettings(steps=2.5).check(),
    "schedule_shift_nan": lambda: flow_schedule(10, float("nan")),
    "schedule_shift_inf": lambda: flow_schedule(10, float("inf")),
    "denoiser_scale_nan": lambda: Denoiser(None, None, None, float("nan")),
}


@pytest.mark.parametrize("case", sorted(BAD_LIBRARY_NUMBERS))
def test_library_refuses_non_finite_settings(case):
    with pytest.raises(ValueError, match="finite|whole"):
        BAD_LIBRARY_NUMBERS[case]()


# --------------------------------------------------------------------------- prompt parts


class _CountingEncoder:
    def __init__(self):
        self.model = torch.nn.Linear(1, 1)
        self.texts = []

    def encode(self, texts):
        self.texts.extend(texts)
        return torch.stack([torch.full((8, 64), float(len(t))) for t in texts])


@pytest.mark.parametrize("parts,chunks,encoded", [(3000, 1, 1), (5, 3, 3), (2, 3, 2)])
def test_only_the_prompts_the_chunks_use_are_encoded(monkeypatch, parts, chunks, encoded):
    from skyreels_pack.sampling import conditioning as cond

    logged = []
    monkeypatch.setattr(host, "log", logged.append)
    enc = _CountingEncoder()
    prompt = " | ".join("part %d" % i for i in range(parts))
    positive, _ = N["SkyReelsTextEncode"]().encode(handles.TextEncoderHandle(enc, "x"), prompt, "neg")
    assert len(enc.texts) <= 2  # the first part and the negative, nothing else yet
    used = cond.model_inputs(positive, 64, 512, "positive", count=chunks)
    assert len(used) == min(parts, chunks)
    assert [t for t in enc.texts if t != "neg"] == ["part %d" % i for i in range(encoded)]
    assert (parts > chunks) == any("are not used" in m for m in logged)


def test_a_chunk_folder_of_another_run_stops_a_run_before_any_model_loads(demo_models, folders, monkeypatch,
                                                                          capsys):
    from skyreels_pack.cli.main import main

    chunks = folders["output"] / "chunks"
    chunks.mkdir()
    (chunks / "chunk_0000.safetensors").write_bytes(b"another run's chunk")
    loaded = []
    for loader in ("SkyReelsDiTLoader", "SkyReelsTextEncoderLoader", "SkyReelsVAELoader"):
        monkeypatch.setattr(N[loader], "load", lambda self, *a, _n=loader, **k: loaded.append(_n))
    wf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflows",
                      "skyreels_v2_df_10s_sync.json")
    sets = ["chunk_folder=chunks", "num_frames=41", "base_num_frames=17", "overlap_history=5", "width=32",
            "height=32", "steps=1"]
    rc = main(["run", wf, "--models", demo_models, "--output", str(folders["output"]), "--quiet"]
              + [a for s in sets for a in ("--set", s)])
    assert rc == 1 and "no run.json" in capsys.readouterr().err and loaded == []
    assert (chunks / "chunk_0000.safetensors").read_bytes() == b"another run's chunk"
