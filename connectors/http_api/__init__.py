"""Calling a payer's or clearinghouse's HTTP API, shared by the plugins that do it.

``client`` (``PortalClient``: OAuth2 client credentials, a deadline on every call, retries with
backoff honouring Retry-After, a per-API rate limit; ``post`` is the one way to send),
``connection`` (the ``[portal]``, ``[auth]`` and ``[limits]`` tables, secrets from the
environment or files), ``schema`` (mapping-file checks reporting every problem at once),
``registry`` (the packaged and practice files, which payers each serves) and ``jsonpath`` (the
small path language the files use). Used by the payer-portal plugins (``plugins/payer_portals``)
and the real-time clearinghouse plugin (``plugins/clearinghouse/realtime``): plugins share
transport code through ``connectors/``, never by importing one another.
"""
