"""bhhub bhhub.plugins.ehr package."""
