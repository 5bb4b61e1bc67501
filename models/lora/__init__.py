"""LoRAs for any DiT of the pack: reading the formats in circulation (:mod:`.formats`), finding
their layers in a model (:mod:`.targets`), applying them merged or on the fly (:mod:`.apply`)."""
from .apply import LoRAAdapter, WeightPatches, apply_loras, lora_summary
from .formats import LoRAError, LoRAFile, read_lora
from .targets import ResolvedLoRA, resolve

__all__ = ["read_lora", "resolve", "apply_loras", "lora_summary", "LoRAFile", "ResolvedLoRA", "LoRAError",
           "LoRAAdapter", "WeightPatches", "load_lora"]


def load_lora(path, model, model_name: str = "this model") -> ResolvedLoRA:
    """Read a LoRA file and match it against ``model`` (LoRAError when nothing fits)."""
    return resolve(read_lora(path), model, model_name)
