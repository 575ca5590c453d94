"""bhhub: the integration hub for behavioral-health billing.

Plugin authors need only ``hub.hookimpl`` (to mark hook implementations), the canonical model
in ``bhhub.model``, the registration records in ``bhhub.types`` and the errors in ``bhhub.errors``.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "bhhub"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["hookimpl", "hookspec", "PROJECT_NAME", "__version__"]
