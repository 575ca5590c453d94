"""bhhub: the integration hub for behavioral-health billing.

Plugin authors need only ``hub.hookimpl`` (to mark hook implementations), the canonical model
in ``hub.model``, the registration records in ``hub.types`` and the errors in ``hub.errors``.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "bhhub"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["hookimpl", "hookspec", "PROJECT_NAME", "__version__"]
