"""Reference images into a Wan DiT: SkyReels-A2 elements-to-video and SkyReels-V3 reference-to-video.

Both models are the Wan2.1 DiT of ``models/wan``; what differs is how the references enter:

* A2 (``a2``): up to three elements (subject, object, background) as the first frames of the
  I2V conditioning video (4 mask + 16 latent channels) and as CLIP tokens concatenated on the
  token axis;
* V3 R2V (``r2v``): one to four references, each a one-frame latent, placed after the noisy
  latent on the time axis (RoPE positions F..F+3) with the same timestep; their output is
  discarded.

``images`` holds the pixel preparation of the official code (PIL, uint8), ``a2`` and ``r2v``
the layouts, ``encode`` the VAE posterior samples.  Nothing here imports ComfyUI.
"""
