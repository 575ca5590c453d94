"""bhhub plugins.clearinghouse package."""
