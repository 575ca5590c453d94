"""``hub.testing``: the contract test kit a plugin's own tests use, one module per family.

* ``hub.testing.ehr``: intake formats (``EhrPluginContract``, ``check_plugin``);
* ``hub.testing.clearinghouse``: transports (``ClearinghousePluginContract``, ``check_plugin``);
* ``hub.testing.payer_portal``: eligibility (``PayerPortalPluginContract``, ``check_plugin``);
* ``hub.testing.transaction``: inbound X12 transactions (``TransactionPluginContract``,
  ``check_plugin``);
* ``hub.testing.common``: what every family shares (registration, entry point, mapping file,
  no network at import); ``hub.testing.network``: the network guard itself;
* ``hub.testing.expected``: expected-output goldens (``NAME.expected.json``; ``python -m
  hub.testing.expected MODULE GOLDEN`` writes one); ``hub.testing.samples``: other formats'
  payloads a recognizer must refuse; ``hub.testing.payloads``: odd and damaged inputs.

Each check raises ``ContractFailure`` (an ``AssertionError``) saying what is wrong and how to fix
it. The kit needs no pytest for its plain functions; the ``...Contract`` base classes are
ordinary pytest test classes. See docs/plugins.md.
"""

from hub.testing.common import ContractFailure
from hub.testing.network import NetworkBlocked, no_network

__all__ = ["ContractFailure", "NetworkBlocked", "no_network"]
