"""Every node of the pack, by id.  Ids carry the ``SkyReels`` prefix and never change."""
NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
