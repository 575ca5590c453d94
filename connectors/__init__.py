"""bhhub connectors package."""
