"""``python . <command>`` from the pack's folder: the headless runner and its helpers.

    python . run WORKFLOW.json [--models DIR] [--output DIR] [--set NODE.INPUT=VALUE ...]
    python . demo-models DIR
    python . list-nodes

The pack folder is imported as the package ``skyreels_pack`` whatever the folder is called,
so the relative imports inside it work exactly as they do under ComfyUI.
"""
import importlib.util
import os
import sys

PACKAGE = "skyreels_pack"


def load_pack(root=None):
    """Import the pack at ``root`` (default: this folder) as ``skyreels_pack``."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    root = os.path.dirname(os.path.abspath(__file__)) if root is None else os.path.abspath(root)
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(root, "__init__.py"), submodule_search_locations=[root])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    load_pack()
    from skyreels_pack.cli.main import main  # noqa: E402

    sys.exit(main(sys.argv[1:]))
