"""bhhub bhhub.plugins.clearinghouse package."""
