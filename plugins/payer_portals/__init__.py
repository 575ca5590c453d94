"""bhhub plugins.payer_portals package."""
