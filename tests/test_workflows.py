"""Every shipped workflow runs headless on the demo models and writes the expected mp4."""
import os

import pytest

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.main import main
from skyreels_pack.cli.shipped import EXTRA_SMOKE, SHIPPED, SMOKE, SMOKE_COMMON, render_all
from skyreels_pack.media.video_io import probe_video
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = os.path.join(ROOT, "workflows")


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


def test_every_shipped_workflow_has_a_case():
    shipped = sorted(f for f in os.listdir(WORKFLOWS) if f.endswith(".json"))
    assert shipped == sorted(SHIPPED) == sorted(SMOKE)


def test_shipped_files_match_their_description():
    for name, text in render_all(NODE_CLASS_MAPPINGS).items():
        with open(os.path.join(WORKFLOWS, name), encoding="utf-8") as f:
            assert f.read() == text, "%s is stale: run `python . build-workflows`" % name


def test_shipped_workflows_carry_official_defaults_and_a_models_note():
    for name in SHIPPED:
        data = wf.load(os.path.join(WORKFLOWS, name))
        notes = [n for n in data["nodes"] if n["type"] == "Note"]
        assert notes and "ComfyUI/models/" in notes[0]["widgets_values"][0], name
        if not name.startswith("skyreels_v2_"):
            continue  # other families test their own official defaults
        api = wf.to_api(data, NODE_CLASS_MAPPINGS)
        sampler = next((n for n in api.values() if n["class_type"] in ("SkyReelsSampler", "SkyReelsDFSampler")), None)
        if sampler is None:  # other families check their defaults in their own tests
            continue
        if "distill" in name:  # step-distill LoRA: its makers' 4 steps without CFG
            assert (sampler["inputs"]["steps"], sampler["inputs"]["cfg"]) == (4, 1.0)
        else:
            assert sampler["inputs"]["steps"] == 30
        size = sampler["inputs"] if "width" in sampler["inputs"] else next(
            n["inputs"] for n in api.values() if "width" in n["inputs"])
        assert (size["width"], size["height"]) == (960, 544)
        if "i2v" in name and "df" not in name:
            assert (sampler["inputs"]["cfg"], sampler["inputs"]["shift"]) == (5.0, 5.0)
        if name == "skyreels_v2_t2v.json":
            assert (sampler["inputs"]["cfg"], sampler["inputs"]["shift"]) == (6.0, 8.0)


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_workflow_runs_headless(name, demo_models, tmp_path, capsys):
    extra, frames = SMOKE[name][:2]
    _run_smoke(name, extra, frames, _fps(name), demo_models, tmp_path, capsys)


@pytest.mark.parametrize("label", sorted(EXTRA_SMOKE))
def test_workflow_runs_headless_with_other_models(label, demo_models, tmp_path, capsys):
    name, extra, frames = EXTRA_SMOKE[label]
    _run_smoke(name, SMOKE[name][0] + extra, frames, _fps(name), demo_models, tmp_path, capsys)


def _fps(name):
    return SMOKE[name][2] if len(SMOKE[name]) > 2 else 24.0


def _run_smoke(name, extra, frames, fps, demo_models, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["run", os.path.join(WORKFLOWS, name), "--models", demo_models, "--output", str(out), "--quiet"]
              + _sets(SMOKE_COMMON + extra))
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    videos = list(out.rglob("*.mp4"))
    assert len(videos) == 1, printed.out
    info = probe_video(str(videos[0]))
    assert info["frames"] == frames
    assert (info["width"], info["height"]) == (128, 96)
    assert abs(info["fps"] - fps) < 1e-3
    if info["has_audio"]:  # the sound track lasts as long as the video, within one frame
        assert abs(_audio_seconds(str(videos[0])) - frames / fps) <= 1.0 / fps


def _audio_seconds(path):
    from skyreels_pack.media.audio_io import load_audio

    audio = load_audio(path)
    return audio["waveform"].shape[-1] / audio["sample_rate"]


def test_ui_graphs_are_consistent_for_the_editor():
    """Links agree with both ends (ids, slots, types), as the ComfyUI editor requires."""
    for name in SHIPPED:
        data = wf.load(os.path.join(WORKFLOWS, name))
        nodes = {n["id"]: n for n in data["nodes"]}
        assert data["last_node_id"] == max(nodes) and data["last_link_id"] == len(data["links"])
        for lid, src, sslot, dst, dslot, typ in data["links"]:
            out = nodes[src]["outputs"][sslot]
            inp = nodes[dst]["inputs"][dslot]
            assert lid in out["links"] and inp["link"] == lid, (name, lid)
            assert out["type"] == typ, (name, lid)
            assert inp["type"] == typ or inp.get("widget"), (name, lid, inp, typ)
        for n in data["nodes"]:
            if n["type"] == "Note":
                continue
            cls = NODE_CLASS_MAPPINGS[n["type"]]
            assert [o["type"] for o in n["outputs"]] == list(cls.RETURN_TYPES)
            assert len(wf.widget_values_to_inputs(cls, n["widgets_values"])) == len(wf.widget_inputs(cls))
