"""Payer-portal plugins: eligibility and benefits from payer REST APIs, as the same
``bhhub.eligibility.benefits.EligibilityResponse`` a 271 gives.

Two plugins, each registered through the ``bhhub`` entry point like a vendor's would be:

* ``generic_json``: any JSON API, described entirely by a mapping file per portal
  (``mappings/payer_portals/*.toml``: payers served, URL, auth, rate limit, request body,
  where each benefit value is in the answer);
* ``fhir_coverage``: a FHIR R4 payer API (``CoverageEligibilityRequest`` in,
  ``CoverageEligibilityResponse`` out), configured by ``mappings/payer_portals/fhir/*.toml``.

``builder`` (benefit entries → an ``EligibilityResponse``) is shared by both. The HTTP client,
the connection tables, the mapping-file checks and the file registry are ``bhhub.connectors.http_api``,
which the real-time clearinghouse plugin uses too.
"""
