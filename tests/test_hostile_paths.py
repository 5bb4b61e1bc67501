"""Hostile paths: nothing is read or written outside ComfyUI's folders (input, output, models),
whatever a workflow names: '..', absolute paths, symbolic links; outputs checked before the
work; concurrent saves never overwrite.  Table-driven; every case failed before the fix."""
import json
import os
import re
import signal

import pytest
import torch

from hostile_util import SMALL, node_of, nothing_outside, shipped_api
from skyreels_pack import host
from skyreels_pack.cli.main import main
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS as N

LoadImage, LoadVideo, SaveVideo = N["SkyReelsLoadImage"], N["SkyReelsLoadVideo"], N["SkyReelsSaveVideo"]
DFOptions, DiTLoader = N["SkyReelsDFOptions"], N["SkyReelsDiTLoader"]
OUT = "(outside|leads outside) (its|the) "  # the refusal (test folder names have no spaces)


# --------------------------------------------------------------------------- inputs

def _input_names(f):
    secret = str(f["outside"] / "secret.png")
    os.symlink(secret, f["input"] / "link.png")
    (f["input"] / "sub").mkdir()
    return {
        "dotdot": "../elsewhere/secret.png",
        "absolute": secret,
        "symlink_out": "link.png",
        "dotdot_through_sub": "sub/../../elsewhere/secret.png",
        "annotated_dotdot": "../elsewhere/secret.png [input]",
    }


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink_out", "dotdot_through_sub", "annotated_dotdot"])
def test_image_name_outside_the_input_folder_is_refused(folders, case):
    name = _input_names(folders)[case]
    msg = LoadImage.VALIDATE_INPUTS(image=name)
    assert msg is not True and re.search(OUT, msg)
    with pytest.raises(ValueError, match=OUT):
        LoadImage().load(name)


def test_video_name_outside_the_input_folder_is_refused(folders):
    (folders["outside"] / "clip.mp4").write_bytes(b"")
    msg = LoadVideo.VALIDATE_INPUTS(video="../elsewhere/clip.mp4", frame_load_cap=0, skip_first_frames=0,
                                    select_every_nth=1)
    assert msg is not True and "outside the input folder" in msg


def test_refusal_does_not_tell_which_outside_files_exist(folders):
    there = LoadImage.VALIDATE_INPUTS(image=str(folders["outside"] / "secret.png"))
    absent = LoadImage.VALIDATE_INPUTS(image=str(folders["outside"] / "nothing.png"))
    assert there is not True and absent is not True
    assert there.replace("secret", "X") == absent.replace("nothing", "X")


def test_headless_inputs_come_only_from_the_given_folders(folders, demo_models, capsys):
    """A workflow's own folder (e.g. Downloads) is not an input folder: only --input-dir, its
    inputs/ subfolder and the pack's examples are."""
    api = shipped_api("skyreels_v2_i2v.json")
    node_of(api, "SkyReelsLoadImage")["inputs"]["image"] = "secret.png"
    wf_path = folders["outside"] / "shared.json"
    wf_path.write_text(json.dumps(api))
    rc = main(["run", str(wf_path), "--models", demo_models, "--output", str(folders["output"]), "--quiet"] + SMALL)
    assert rc == 1 and "'secret.png' not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- outputs


def _prefixes(f):
    os.symlink(str(f["outside"]), f["output"] / "link")
    return {
        "absolute": str(f["outside"] / "x"),
        "dotdot": "../elsewhere/x",
        "dotdot_through_sub": "a/../../elsewhere/x",
        "backslash_dotdot": "..\\elsewhere\\x",
        "symlink_out": "link/x",
    }


@pytest.mark.parametrize("case", ["absolute", "dotdot", "dotdot_through_sub", "backslash_dotdot", "symlink_out"])
def test_filename_prefix_outside_the_output_folder_is_refused_in_validation(folders, case):
    prefix = _prefixes(folders)[case]
    msg = SaveVideo.VALIDATE_INPUTS(fps=24.0, filename_prefix=prefix, crf=19)
    assert msg is not True and re.search(OUT, msg)
    with pytest.raises(ValueError, match=OUT):
        SaveVideo().save(torch.rand(1, 16, 16, 3), 24.0, prefix, 19)
    assert nothing_outside(folders)


def _bad_output(f, case, monkeypatch):
    if case == "file_in_place":
        (f["output"] / "videos").write_text("not a folder")
        return "videos/clip", "is a file"
    if case == "unwritable":
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if "output" in str(p) else real(p, mode, **kw))
        return "clip", "not writable"
    if case == "name_too_long":
        return "x" * 300, "longer"
    if case == "path_too_long":
        return "/".join(["d" * 200] * 25) + "/clip", "longer"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["file_in_place", "unwritable", "name_too_long", "path_too_long"])
def test_unusable_output_is_refused_in_validation(folders, monkeypatch, case):
    prefix, words = _bad_output(folders, case, monkeypatch)
    msg = SaveVideo.VALIDATE_INPUTS(fps=24.0, filename_prefix=prefix, crf=19)
    assert msg is not True and words in msg


def test_unusable_output_stops_a_headless_run_before_any_model_loads(folders, demo_models, capsys, monkeypatch):
    (folders["output"] / "videos").write_text("not a folder")
    api = shipped_api()
    node_of(api, "SkyReelsSaveVideo")["inputs"]["filename_prefix"] = "videos/clip"
    p = folders["input"] / "wf.json"
    p.write_text(json.dumps(api))
    loads = []
    monkeypatch.setattr(DiTLoader, "load", lambda self, *a, **k: loads.append(1))
    rc = main(["run", str(p), "--models", demo_models, "--output", str(folders["output"]), "--quiet"] + SMALL)
    assert rc == 1 and "is a file" in capsys.readouterr().err and not loads


def test_output_flag_naming_a_file_is_refused_at_once(folders, demo_models, capsys):
    f = folders["outside"] / "notadir"
    f.write_text("x")
    rc = main(["run", os.path.join(os.path.dirname(__file__), "..", "workflows", "skyreels_v2_t2v.json"),
               "--models", demo_models, "--output", str(f), "--quiet"] + SMALL)
    assert rc == 2 and "is a file" in capsys.readouterr().err


def test_concurrent_saves_never_pick_the_same_file(folders, monkeypatch):
    """Another run writes SkyReels_00001.mp4 after this one listed the folder: this one must not
    overwrite it (the file is created exclusively)."""
    other = folders["output"] / "SkyReels_00001.mp4"
    other.write_bytes(b"another run's video")
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p=".": [] if str(p).startswith(str(folders["output"])) else real(p))
    out = SaveVideo().save(torch.rand(1, 16, 16, 3), 24.0, "SkyReels", 19)
    assert other.read_bytes() == b"another run's video"
    assert out["result"][0].endswith("SkyReels_00002.mp4")


def test_reserved_names_are_exclusive(folders):
    a = host.reserve_output_file("clips/run", ".mp4")
    b = host.reserve_output_file("clips/run", ".mp4")
    assert a.path != b.path and os.path.exists(a.path) and os.path.exists(b.path)
    assert (a.subfolder, a.filename) == ("clips", "run_00001.mp4")


# --------------------------------------------------------------------------- chunk folders


def _chunk_folders(f):
    os.symlink(str(f["outside"]), f["output"] / "link")
    (f["output"] / "afile").write_text("x")
    return {
        "dotdot": ("../../x", OUT),
        "absolute": (str(f["outside"] / "chunks"), OUT),
        "symlink_out": ("link/chunks", OUT),
        "file_in_place": ("afile", "is a file"),
    }


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink_out", "file_in_place"])
def test_chunk_folder_outside_or_unusable_is_refused_in_validation(folders, case):
    name, words = _chunk_folders(folders)[case]
    kw = dict(base_num_frames=97, overlap_history=17, addnoise_condition=20, fps=24.0, history="latent",
              color_match="none", color_match_strength=1.0, causal_attention=False, solver="unipc",
              sigma_grid="official", chunk_folder=name, auto_orient=True)
    msg = DFOptions.VALIDATE_INPUTS(**kw)
    assert msg is not True and re.search(words, msg)
    with pytest.raises(ValueError, match=words):
        host.resolve_output_dir(name)
    assert nothing_outside(folders)


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("case", ["dotdot", "absolute"])
def test_model_name_outside_the_model_folders_is_refused(folders, case):
    name = {"dotdot": "../../elsewhere/secret.safetensors",
            "absolute": str(folders["outside"] / "secret.safetensors")}[case]
    with pytest.raises(host.PathError, match=OUT):
        host.resolve_model("diffusion_models", name)


def test_loader_path_outside_the_model_folders_is_refused_before_reading(folders):
    with pytest.raises(ValueError, match="outside the diffusion_models folders"):
        DiTLoader().load("x", "auto", "auto", "auto", 0.0, path=str(folders["outside"] / "secret.safetensors"))


@pytest.mark.parametrize("shard", ["../elsewhere/secret.safetensors", "/etc/passwd", "sub/../../x.safetensors"])
def test_shard_index_pointing_outside_its_folder_is_refused(tmp_path, shard):
    from skyreels_pack.models.loading.checkpoint import CheckpointError, component_files

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model-1.safetensors").write_bytes(b"")
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-1.safetensors", "b": shard}}))
    with pytest.raises(CheckpointError, match="outside the model's folder"):
        component_files(str(folder), "dit")


def test_symlink_loops_in_a_model_folder_do_not_hang_the_listing(folders):
    root = folders["models"] / "diffusion_models"
    deep = root / "a"
    deep.mkdir()
    (deep / "model.safetensors").write_bytes(b"")
    for name in ("l1", "l2", "l3"):
        os.symlink(str(root), deep / name)  # each level triples: 3^40 paths without a bound

    class TooLong(Exception):  # not an OSError, which os.walk would swallow
        pass

    def too_long(*_):
        raise TooLong("the model listing did not finish in 20 s")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(20)
    try:
        names = host.list_models("diffusion_models")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert "a/model.safetensors" in names and len(names) < 50


@pytest.mark.parametrize("node", ["SkyReelsV3ExtendVideo", "SkyReelsV3ShotSwitch", "SkyReelsA1Sampler",
                                  "SkyReelsTalkingAvatarOptions"])
def test_every_familys_chunk_folder_outside_the_output_folder_is_refused(folders, node):
    if node not in N:
        pytest.skip("%s is not registered" % node)
    msg = N[node].VALIDATE_INPUTS(chunk_folder="../../x")
    assert msg is not True and re.search(OUT, msg)


def test_audio_name_outside_the_input_folder_is_refused(folders):
    if "SkyReelsLoadAudio" not in N:
        pytest.skip("no audio loader registered")
    (folders["outside"] / "voice.wav").write_bytes(b"")
    assert N["SkyReelsLoadAudio"].VALIDATE_INPUTS(audio="../elsewhere/voice.wav") is not True
    with pytest.raises(ValueError, match=OUT):
        N["SkyReelsLoadAudio"]().load("../elsewhere/voice.wav", 0.0, 0.0)
