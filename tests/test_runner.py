"""The headless runner: workflow formats, validation messages, overrides, and node stability."""
import json
import os

import pytest

from skyreels_pack import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.executor import ExecutionError, execute, validate
from skyreels_pack.cli.main import apply_sets, main, parse_set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T2V = os.path.join(ROOT, "workflows", "skyreels_v2_t2v.json")
HERE = os.path.dirname(os.path.abspath(__file__))


def test_nodes_are_registered_with_prefix_tooltips_and_category_tree():
    assert len(NODE_CLASS_MAPPINGS) >= 17
    cats = set()
    for nid, cls in NODE_CLASS_MAPPINGS.items():
        assert nid.startswith("SkyReels") and NODE_DISPLAY_NAME_MAPPINGS[nid].startswith("SkyReels")
        assert cls.CATEGORY.startswith("SkyReels/")
        cats.add(cls.CATEGORY)
        assert cls.DESCRIPTION and len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
        for section in cls.INPUT_TYPES().values():
            for name, spec in section.items():
                assert len(spec) > 1 and spec[1].get("tooltip"), "%s.%s has no tooltip" % (nid, name)
    assert 3 <= len(cats) <= 6


def test_node_inputs_only_ever_grow_at_the_end():
    """Saved workflows keep working: inputs are appended, never renamed, removed or reordered."""
    with open(os.path.join(HERE, "node_signatures.json")) as f:
        saved = json.load(f)
    for nid, old in saved.items():
        assert nid in NODE_CLASS_MAPPINGS, "node %s disappeared" % nid
        cls = NODE_CLASS_MAPPINGS[nid]
        t = cls.INPUT_TYPES()
        now_req, now_opt = list(t.get("required", {})), list(t.get("optional", {}))
        assert now_req[:len(old["required"])] == old["required"], nid
        assert now_opt[:len(old["optional"])] == old["optional"], nid
        assert list(cls.RETURN_TYPES)[:len(old["outputs"])] == old["outputs"], nid


def _ui():
    return wf.load(T2V)


def test_ui_conversion_reads_widgets_in_order_with_seed_control_value():
    api = wf.to_api(_ui(), NODE_CLASS_MAPPINGS)
    sampler = next(n for n in api.values() if n["class_type"] == "SkyReelsSampler")
    assert sampler["inputs"]["seed"] == 0 and sampler["inputs"]["steps"] == 30
    assert sampler["inputs"]["solver"] == "unipc"  # after the "fixed" control value
    assert sampler["inputs"]["model"] == ["1", 0]
    assert not any(n["class_type"] == "Note" for n in api.values())


def test_bypassed_and_muted_nodes():
    ui = _ui()
    # bypass the decode node: the save node must then be fed by... nothing of type IMAGE -> dropped input
    for n in ui["nodes"]:
        if n["type"] == "SkyReelsVAEDecode":
            n["mode"] = 4
    api = wf.to_api(ui, NODE_CLASS_MAPPINGS)
    assert not any(n["class_type"] == "SkyReelsVAEDecode" for n in api.values())
    save = next(n for n in api.values() if n["class_type"] == "SkyReelsSaveVideo")
    assert "images" not in save["inputs"]
    assert any("required input 'images' is missing" in e for e in validate(api, NODE_CLASS_MAPPINGS))


def test_validation_explains_bad_values():
    api = wf.to_api(_ui(), NODE_CLASS_MAPPINGS)
    latent = next(n for n in api.values() if n["class_type"] == "SkyReelsEmptyLatent")
    latent["inputs"]["width"] = 970
    latent["inputs"]["num_frames"] = 96
    sampler = next(n for n in api.values() if n["class_type"] == "SkyReelsSampler")
    sampler["inputs"]["solver"] = "dpm"
    sampler["inputs"]["steps"] = 0
    errors = "\n".join(validate(api, NODE_CLASS_MAPPINGS))
    assert "width 970 is not a multiple of 16 (use 960 or 976)" in errors
    assert "num_frames 96 is not 4k+1 (use 93 or 97)" in errors
    assert "'dpm' is not one of the choices for 'solver'" in errors
    assert "'steps' is 0, below its minimum 1" in errors
    with pytest.raises(ExecutionError, match="not valid"):
        execute(api, NODE_CLASS_MAPPINGS)


def test_wrong_link_type_and_unknown_node():
    api = wf.to_api(_ui(), NODE_CLASS_MAPPINGS)
    sampler_id = next(k for k, n in api.items() if n["class_type"] == "SkyReelsSampler")
    api[sampler_id]["inputs"]["latent"] = ["2", 0]  # a text encoder, not a LATENT
    assert any("wants LATENT but" in e for e in validate(api, NODE_CLASS_MAPPINGS))
    ui = _ui()
    ui["nodes"][0]["type"] = "SomeOtherPackNode"
    with pytest.raises(wf.WorkflowError, match="not installed"):
        wf.to_api(ui, NODE_CLASS_MAPPINGS)


def test_set_overrides_by_id_title_type_and_everywhere():
    api = wf.to_api(_ui(), NODE_CLASS_MAPPINGS)
    apply_sets(api, parse_set(["steps=4", "SkyReelsEmptyLatent.width=320", "14.fps=16", "crf=23"]))
    assert next(n for n in api.values() if n["class_type"] == "SkyReelsSampler")["inputs"]["steps"] == 4
    assert next(n for n in api.values() if n["class_type"] == "SkyReelsEmptyLatent")["inputs"]["width"] == 320
    assert api["14"]["inputs"]["fps"] == 16 and api["14"]["inputs"]["crf"] == 23
    with pytest.raises(wf.WorkflowError, match="no node has that input"):
        apply_sets(api, parse_set(["nonexistent=1"]))


def test_run_command_reports_errors_and_exit_codes(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.json"), "--models", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["run", str(bad), "--models", str(tmp_path)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    # a real workflow with no models in the folder: a clear model-not-found message
    assert main(["run", T2V, "--models", str(tmp_path), "--output", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "wan_2.1_vae.safetensors' not found in the vae folders" in err and "Put the file there" in err


def test_api_format_workflow_runs(tmp_path, capsys):
    from skyreels_pack.cli.demo import write_demo_models

    models = write_demo_models(str(tmp_path / "models"))
    api = wf.to_api(_ui(), NODE_CLASS_MAPPINGS)
    p = tmp_path / "api.json"
    p.write_text(json.dumps(api))
    rc = main(["run", str(p), "--models", models, "--output", str(tmp_path / "o"), "--quiet",
               "--set", "width=64", "--set", "height=64", "--set", "num_frames=5", "--set", "steps=2"])
    assert rc == 0, capsys.readouterr().err
    assert len(list((tmp_path / "o").rglob("*.mp4"))) == 1
