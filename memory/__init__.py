"""Running big DiTs on small GPUs: VRAM budget planning and block streaming, release after use,
weight-only int8 / nf4 quantization and optional torch.compile of the blocks.

Public entry points: :func:`memory.offload.prepare_for_sampling`, :func:`memory.offload.release`,
:func:`memory.offload.estimate_bytes`, :func:`memory.quant.quantize_blocks`,
:func:`memory.compile.compile_blocks`.
Every family's DiT plugs in through the small protocol of :mod:`memory.streamable`.
"""
