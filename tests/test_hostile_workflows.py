"""Hostile and careless workflow files, overrides and widget values: one plain message each,
never a traceback, never a silent wrong run.  Table-driven; every case failed before the fix."""
import codecs
import json
import math
import os

import pytest

from hostile_util import node_of
from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.executor import validate
from skyreels_pack.cli.main import apply_sets, main, parse_set
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS as N

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T2V = os.path.join(ROOT, "workflows", "skyreels_v2_t2v.json")
DF = os.path.join(ROOT, "workflows", "skyreels_v2_df_10s_sync.json")


def _t2v_text():
    with open(T2V, encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------- files

BAD_FILES = {
    "json_array": (b"[1, 2, 3]", "JSON array"),
    "json_string": (b'"nodes"', "JSON string"),
    "json_null": (b"null", "null"),
    "json_number": (b"42", "JSON number"),
    "latin1": ('{"nodes": [], "title": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
    "deep_nesting": (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    "random_bytes": (bytes(range(256)) * 4, "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_workflow_file_gives_one_plain_message(tmp_path, case, capsys):
    data, words = BAD_FILES[case]
    p = tmp_path / "w.json"
    p.write_bytes(data)
    with pytest.raises(wf.WorkflowError, match=words):
        wf.load(str(p))
    assert main(["run", str(p), "--models", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


ENCODINGS = {
    "utf8_bom": lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
    "utf16_bom": lambda t: t.encode("utf-16"),
    "utf16le_no_bom": lambda t: t.encode("utf-16-le"),
    "utf16be_no_bom": lambda t: t.encode("utf-16-be"),
}


@pytest.mark.parametrize("case", sorted(ENCODINGS))
def test_workflows_saved_by_windows_editors_load(tmp_path, case):
    p = tmp_path / "w.json"
    p.write_bytes(ENCODINGS[case](_t2v_text()))
    assert wf.load(str(p)) == json.loads(_t2v_text())


def test_a_folder_given_as_the_workflow(tmp_path, capsys):
    assert main(["run", str(tmp_path), "--models", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "is a folder" in err and "Traceback" not in err


# --------------------------------------------------------------------------- malformed graphs


def _ui_with(change):
    data = json.loads(_t2v_text())
    change(data)
    return data


def _set_first_node(key, value):
    def change(d):
        d["nodes"][0][key] = value
    return change


BAD_GRAPHS = {
    "nodes_not_a_list": (lambda d: d.update(nodes={"1": {}}), "'nodes' must be a list"),
    "node_not_an_object": (lambda d: d["nodes"].append(7), "is not an object"),
    "node_without_id": (lambda d: d["nodes"][0].pop("id"), "no usable 'id'"),
    "duplicate_ids": (lambda d: d["nodes"][1].update(id=d["nodes"][0]["id"]), "two nodes have the id"),
    "type_not_text": (_set_first_node("type", 5), "has no node type"),
    "widgets_values_text": (_set_first_node("widgets_values", "abc"), "'widgets_values' must be a list"),
    "inputs_not_a_list": (_set_first_node("inputs", {"a": 1}), "'inputs' must be a list"),
    "link_too_short": (lambda d: d["links"].append([99, 1]), "link #"),
    "link_negative_slot": (lambda d: d["links"][0].__setitem__(2, -1), "link #1 is malformed"),
    "link_text_slot": (lambda d: d["links"][0].__setitem__(4, "x"), "link #1 is malformed"),
    "links_not_a_list": (lambda d: d.update(links={"a": 1}), "'links' must be a list"),
    "input_link_not_an_id": (lambda d: next(n for n in d["nodes"] if n.get("inputs"))["inputs"][0]
                             .update(link=[1, 2]), "malformed link"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_malformed_ui_graph_gives_one_plain_message(case):
    change, words = BAD_GRAPHS[case]
    with pytest.raises(wf.WorkflowError, match=words):
        wf.to_api(_ui_with(change), N)


BAD_API = {
    "class_type_a_list": ({"1": {"class_type": ["SkyReelsSaveVideo"], "inputs": {}}}, "'class_type' must be"),
    "inputs_not_an_object": ({"1": {"class_type": "SkyReelsSaveVideo", "inputs": "abc"}}, "'inputs' must be"),
    "meta_not_an_object": ({"1": {"class_type": "SkyReelsSaveVideo", "inputs": {}, "_meta": 5}}, "'_meta' must be"),
}


@pytest.mark.parametrize("case", sorted(BAD_API))
def test_malformed_api_workflow_gives_one_plain_message(case):
    data, words = BAD_API[case]
    with pytest.raises(wf.WorkflowError, match=words):
        wf.to_api(data, N)


def test_widgets_saved_by_name_are_read_by_name():
    def by_name(d):
        n = next(n for n in d["nodes"] if n["type"] == "SkyReelsEmptyLatent")
        n["widgets_values"] = {"width": 320, "height": 192, "num_frames": 33, "batch_size": 1}
    api = wf.to_api(_ui_with(by_name), N)
    assert node_of(api, "SkyReelsEmptyLatent")["inputs"] == {"width": 320, "height": 192, "num_frames": 33,
                                                              "batch_size": 1}


# --------------------------------------------------------------------------- --set

BAD_SETS = {
    "unknown_input_on_a_type": ("SkyReelsSampler.stepz=3", "has no input 'stepz'"),
    "unknown_input_on_an_id": ("12.colour=3", "has no input 'colour'"),
    "unknown_node": ("NoSuchNode.steps=3", "no node has the id, title or type"),
    "replaces_a_link_everywhere": ("latent=x", "connected to another node"),
    "replaces_a_link_on_a_node": ("SkyReelsSampler.model=x", "is connected to node"),
    "replaces_a_link_by_id": ("14.images=1", "is connected to node"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETS))
def test_set_refuses_what_is_not_a_widget_of_the_node(case):
    item, words = BAD_SETS[case]
    api = wf.to_api(wf.load(T2V), N)
    before = json.dumps(api, sort_keys=True)
    with pytest.raises(wf.WorkflowError, match=words):
        apply_sets(api, parse_set([item]), N)
    assert json.dumps(api, sort_keys=True) == before


# --------------------------------------------------------------------------- numbers

NAN, INF = math.nan, math.inf

BAD_NUMBERS = {
    "cfg_nan": ("SkyReelsSampler", "cfg", NAN, "finite"),
    "cfg_inf": ("SkyReelsSampler", "cfg", INF, "finite"),
    "shift_nan": ("SkyReelsSampler", "shift", NAN, "finite"),
    "shift_zero": ("SkyReelsSampler", "shift", 0.0, "above 0"),
    "steps_inf": ("SkyReelsSampler", "steps", INF, "finite"),
    "steps_nan": ("SkyReelsSampler", "steps", NAN, "finite"),
    "fps_nan": ("SkyReelsSaveVideo", "fps", NAN, "finite"),
    "width_inf": ("SkyReelsEmptyLatent", "width", -INF, "finite"),
}


@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_non_finite_or_impossible_numbers_are_refused_in_validation(case):
    ctype, name, value, words = BAD_NUMBERS[case]
    api = wf.to_api(wf.load(T2V), N)
    node_of(api, ctype)["inputs"][name] = value
    errors = "\n".join(validate(api, N))
    assert words in errors and repr(name) in errors


COMFY_NUMBERS = {  # ComfyUI lets NaN through its own min/max checks: the nodes must refuse it
    "sampler_cfg": ("SkyReelsSampler", {"cfg": NAN, "shift": 8.0, "steps": 30, "seed": 0}),
    "df_shift": ("SkyReelsDFSampler", {"shift": NAN, "cfg": 6.0, "width": 960, "height": 544}),
    "df_options_fps": ("SkyReelsDFOptions", {"fps": NAN, "base_num_frames": 97, "overlap_history": 17}),
    "teacache_threshold": ("SkyReelsTeaCache", {"threshold": NAN, "use_ret_steps": True}),
    "dit_budget": ("SkyReelsDiTLoader", {"vram_budget_gb": INF, "weight_dtype": "auto"}),
}


@pytest.mark.parametrize("case", sorted(COMFY_NUMBERS))
def test_validate_inputs_refuses_nan_the_way_comfyui_calls_it(case):
    ctype, values = COMFY_NUMBERS[case]
    msg = N[ctype].VALIDATE_INPUTS(**values)
    assert msg is not True and "finite" in msg


def test_a_value_where_a_connection_belongs_is_refused():
    api = wf.to_api(wf.load(T2V), N)
    node_of(api, "SkyReelsSaveVideo")["inputs"]["images"] = "frames.png"
    assert any("must be connected" in e for e in validate(api, N))


def test_a_link_to_a_negative_output_is_refused():
    api = wf.to_api(wf.load(T2V), N)
    node_of(api, "SkyReelsSaveVideo")["inputs"]["images"] = ["13", -1]
    assert any("uses output -1" in e for e in validate(api, N))


def test_input_dir_that_is_not_a_folder(tmp_path, capsys):
    assert main(["run", T2V, "--models", str(tmp_path), "--input-dir", str(tmp_path / "none")]) == 2
    assert "--input-dir" in capsys.readouterr().err


# --------------------------------------------------------------------------- plans before models

IMPOSSIBLE_DF = {
    "blocks_do_not_divide": (["num_frames=41", "base_num_frames=17", "overlap_history=5", "causal_block_size=2"],
                             "causal_block_size"),
    "overlap_not_shorter": (["num_frames=41", "base_num_frames=17", "overlap_history=17"], "shorter"),
}


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE_DF))
def test_impossible_df_plan_is_refused_before_any_model_loads(case, demo_models, folders, monkeypatch, capsys):
    sets, words = IMPOSSIBLE_DF[case]
    loaded = []
    for loader in ("SkyReelsDiTLoader", "SkyReelsTextEncoderLoader", "SkyReelsVAELoader"):
        monkeypatch.setattr(N[loader], "load", lambda self, *a, _n=loader, **k: loaded.append(_n))
    args = [a for s in sets + ["width=32", "height=32", "steps=1"] for a in ("--set", s)]
    rc = main(["run", DF, "--models", demo_models, "--output", str(folders["output"]), "--quiet"] + args)
    assert rc == 1 and words in capsys.readouterr().err
    assert loaded == []
