"""bhhub plugins.ehr package."""
