"""HunyuanVideo family (SkyReels-V1): the MMDiT, the causal 3D VAE and the text encoders."""
