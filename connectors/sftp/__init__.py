"""bhhub connectors.sftp package."""
