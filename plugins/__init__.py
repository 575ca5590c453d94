"""bhhub plugins package."""
