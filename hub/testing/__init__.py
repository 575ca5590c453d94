"""``bhhub.testing``: the contract test kit a plugin's own tests use, one module per family.

* ``bhhub.testing.ehr``: intake formats (``EhrPluginContract``, ``check_plugin``);
* ``bhhub.testing.clearinghouse``: transports (``ClearinghousePluginContract``, ``check_plugin``);
* ``bhhub.testing.payer_portal``: eligibility (``PayerPortalPluginContract``, ``check_plugin``);
* ``bhhub.testing.transaction``: inbound X12 transactions (``TransactionPluginContract``,
  ``check_plugin``);
* ``bhhub.testing.common``: what every family shares (registration, entry point, mapping file,
  no network at import); ``bhhub.testing.network``: the network guard itself;
* ``bhhub.testing.expected``: expected-output goldens (``NAME.expected.json``; ``python -m
  bhhub.testing.expected MODULE GOLDEN`` writes one); ``bhhub.testing.samples``: other formats'
  payloads a recognizer must refuse; ``bhhub.testing.payloads``: odd and damaged inputs.

Each check raises ``ContractFailure`` (an ``AssertionError``) saying what is wrong and how to fix
it. The kit needs no pytest for its plain functions; the ``...Contract`` base classes are
ordinary pytest test classes. See docs/plugins.md.
"""

from bhhub.testing.common import ContractFailure
from bhhub.testing.network import NetworkBlocked, no_network

__all__ = ["ContractFailure", "NetworkBlocked", "no_network"]
