"""The ``bhhub`` command line."""
