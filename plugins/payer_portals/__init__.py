"""Payer-portal plugins: eligibility and benefits from payer REST APIs, as the same
``hub.eligibility.benefits.EligibilityResponse`` a 271 gives.

Two plugins, each registered through the ``bhhub`` entry point like a vendor's would be:

* ``generic_json``: any JSON API, described entirely by a mapping file per portal
  (``mappings/payer_portals/*.toml``: payers served, URL, auth, rate limit, request body,
  where each benefit value is in the answer);
* ``fhir_coverage``: a FHIR R4 payer API (``CoverageEligibilityRequest`` in,
  ``CoverageEligibilityResponse`` out), configured by ``mappings/payer_portals/fhir/*.toml``.

Shared by both (and by no other plugin): ``http`` (``PortalClient``: OAuth2 client credentials,
timeouts, retries with backoff honouring Retry-After, a per-portal rate limit, a deadline per
check), ``connection`` (the ``[auth]`` and ``[limits]`` tables), ``schema`` (mapping checks that
report every problem at once), ``builder`` (benefit entries → an ``EligibilityResponse``) and
``registry`` (the portal files of a plugin, the practice's over the packaged ones).
"""
