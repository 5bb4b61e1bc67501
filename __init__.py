"""SkyReels for ComfyUI: the whole SkyReels video family as ComfyUI nodes.

ComfyUI imports this file from ``custom_nodes/``; it registers the nodes.  The engine lives
in plain-PyTorch modules beside it (``models/``, ``sampling/``, ``media/``) and can be used
without ComfyUI (see the README, "Use as a library").
"""
from .nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
