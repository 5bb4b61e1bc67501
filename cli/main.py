"""Command line of the pack: ``python . <command>`` from the pack's folder.

    run WORKFLOW.json [--models DIR] [--output DIR] [--input-dir DIR] [--set NODE.INPUT=VALUE ...]
        Run a workflow (UI or API format) without ComfyUI.  Without --models, small
        random-weight demo models are made (once) and used: they show that everything runs,
        but random weights produce noise, not a real video.
    demo-models DIR      Write the small random-weight demo models into DIR (a models/ layout).
    list-nodes           The nodes of the pack.
    build-workflows      (development) Rewrite workflows/ from cli/shipped/.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from .. import host

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_INPUTS = os.path.join(PACK_DIR, "workflows", "inputs")
DEFAULT_OUTPUT = os.path.join(os.path.expanduser("~"), "skyreels_output")  # never inside the pack folder


def default_demo_dir() -> str:
    return os.environ.get("SKYREELS_DEMO_MODELS") or os.path.join(
        os.path.expanduser("~"), ".cache", "skyreels_pack", "demo_models")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python .", description="SkyReels for ComfyUI: headless tools.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a workflow file without ComfyUI")
    r.add_argument("workflow")
    r.add_argument("--models", action="append", default=[], metavar="DIR",
                   help="a folder laid out like ComfyUI's models/ (repeatable); default: demo models")
    r.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                   help="where outputs are written (default %s)" % DEFAULT_OUTPUT)
    r.add_argument("--input-dir", action="append", default=[], metavar="DIR",
                   help="folders searched for input images and videos (besides the pack's examples)")
    r.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="override a widget: NODE is a node id, title or type; without NODE every node with that "
                        "input is changed; VALUE is JSON or text")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    d = sub.add_parser("demo-models", help="write small random-weight models in the real file formats")
    d.add_argument("dir")
    d.add_argument("--force", action="store_true", help="rewrite files that exist")
    sub.add_parser("list-nodes", help="list the nodes of the pack")
    b = sub.add_parser("build-workflows", help="(development) rewrite workflows/ from cli/shipped/")
    b.add_argument("--inputs", action="store_true", help="also redraw the example input media")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "demo-models":
            from .demo import write_demo_models

            path = write_demo_models(args.dir, force=args.force)
            print("demo models written to %s (random weights: they produce noise, not real videos)" % path)
            return 0
        if args.command == "list-nodes":
            from ..nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

            for nid, cls in NODE_CLASS_MAPPINGS.items():
                print("%-28s %-42s %s" % (nid, NODE_DISPLAY_NAME_MAPPINGS[nid], cls.CATEGORY))
            return 0
        if args.command == "build-workflows":
            from ..nodes.registry import NODE_CLASS_MAPPINGS
            from .shipped import write_all

            for path in write_all(os.path.join(PACK_DIR, "workflows"), NODE_CLASS_MAPPINGS):
                print("wrote", path)
            if args.inputs:
                from .shipped import write_example_inputs

                for path in write_example_inputs(EXAMPLE_INPUTS):
                    print("wrote", path)
            return 0
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
    return 2


def parse_set(items: List[str]):
    out = []
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise SystemExit("--set %r: expected NODE.INPUT=VALUE or INPUT=VALUE" % item)
        node, dot, name = key.rpartition(".")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.append((node if dot else None, name, value))
    return out


def _declared_inputs(classes, class_type) -> Optional[set]:
    cls = classes.get(class_type) if classes else None
    if cls is None:
        return None
    types = cls.INPUT_TYPES()
    return set(types.get("required", {})) | set(types.get("optional", {}))


def apply_sets(prompt: dict, sets, classes=None) -> None:
    """Apply ``--set`` overrides to an API prompt.  A name no node has, or an input that is
    connected to another node (a link, not a widget), is refused with a plain message."""
    from .workflow import WorkflowError

    if classes is None:
        from ..nodes.registry import NODE_CLASS_MAPPINGS as classes

    def has(nid, name):
        declared = _declared_inputs(classes, prompt[nid]["class_type"])
        return name in prompt[nid]["inputs"] or (declared is not None and name in declared)

    for node, name, value in sets:
        label = "--set %s%s" % (node + "." if node else "", name)
        if node is None:
            having = [nid for nid in prompt if has(nid, name)]
            targets = [nid for nid in having if not _linked(prompt[nid]["inputs"].get(name))]
            if not having:
                raise WorkflowError("%s: no node has that input" % label)
            if not targets:
                raise WorkflowError("%s: every node with that input has it connected to another node; --set changes "
                                    "widget values, not links" % label)
        else:
            targets = [nid for nid, n in prompt.items() if nid == node] or \
                      [nid for nid, n in prompt.items() if n.get("_meta", {}).get("title") == node] or \
                      [nid for nid, n in prompt.items() if n["class_type"] == node]
            if not targets:
                raise WorkflowError("%s: no node has the id, title or type %r" % (label, node))
            for nid in targets:
                n = prompt[nid]
                if not has(nid, name):
                    declared = sorted(_declared_inputs(classes, n["class_type"]) or n["inputs"])
                    raise WorkflowError("%s: node %s (%s) has no input %r; its inputs are %s"
                                        % (label, nid, n["class_type"], name, ", ".join(declared) or "none"))
                if _linked(n["inputs"].get(name)):
                    raise WorkflowError("%s: that input of node %s (%s) is connected to node %s; --set changes widget "
                                        "values, not links" % (label, nid, n["class_type"], n["inputs"][name][0]))
        for nid in targets:
            prompt[nid]["inputs"][name] = value


def _linked(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)


def cmd_run(args) -> int:
    host.set_quiet(args.quiet)
    models = args.models
    if not models:
        from .demo import write_demo_models

        demo = default_demo_dir()
        write_demo_models(demo)
        print("No --models given: using the small random-weight demo models in %s.\n"
              "Random weights produce noise, not a real video; pass --models with your ComfyUI models folder "
              "for real results." % demo, file=sys.stderr)
        models = [demo]
    for flag, folders in (("--models", models), ("--input-dir", args.input_dir)):
        for m in folders:
            if not os.path.isdir(m):
                print("error: %s %s is not a folder" % (flag, m), file=sys.stderr)
                return 2
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        print("error: --output %s is a file, not a folder" % args.output, file=sys.stderr)
        return 2
    saved = (host._model_roots, host._output_dir, host._input_dirs)  # restored after the run (library, tests)
    try:
        return _run(args, models)
    finally:
        host._model_roots, host._output_dir, host._input_dirs = saved


def _run(args, models) -> int:
    from ..nodes.registry import NODE_CLASS_MAPPINGS
    from . import workflow as wf
    from .executor import ExecutionError, execute

    host.set_model_roots(models)
    host.set_output_dir(args.output)
    # Inputs are read from these folders only: the ones given, the workflow's inputs/ folder and
    # the pack's example inputs (a shared workflow cannot read files elsewhere).
    wf_dir = os.path.dirname(os.path.abspath(args.workflow))
    host.set_input_dirs(args.input_dir + [os.path.join(wf_dir, "inputs"), EXAMPLE_INPUTS])
    try:
        prompt = wf.to_api(wf.load(args.workflow), NODE_CLASS_MAPPINGS)
        apply_sets(prompt, parse_set(args.set), NODE_CLASS_MAPPINGS)
        result = execute(prompt, NODE_CLASS_MAPPINGS)
    except (wf.WorkflowError, ExecutionError) as e:
        print("error: %s" % e, file=sys.stderr)
        if getattr(e, "detail", "") and os.environ.get("SKYREELS_TRACEBACK"):
            print(e.detail, file=sys.stderr)
        return 1
    except host.Interrupted:
        print("cancelled", file=sys.stderr)
        return 130
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - one plain line, never a traceback (unless asked for)
        import traceback

        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if os.environ.get("SKYREELS_TRACEBACK"):
            traceback.print_exc()
        else:
            print("(this looks like a bug in the pack; SKYREELS_TRACEBACK=1 shows where)", file=sys.stderr)
        return 1
    written = []
    for nid, ui in result.ui.items():
        for item in ui.get("images", []) + ui.get("gifs", []):
            written.append(os.path.join(host.output_dir(), item.get("subfolder", ""), item["filename"]))
    total = sum(result.seconds.values())
    print("done in %.1f s; wrote %s" % (total, ", ".join(written) if written else "nothing"))
    return 0
