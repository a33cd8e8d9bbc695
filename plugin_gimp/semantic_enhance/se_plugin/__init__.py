"""Parts of the Semantic Enhance plug-in that do not touch GIMP: settings, transport, protocol.

The message classes and the image streaming code are the backend's own ``schema`` and ``wire``
modules: ``install-gimp-plugin`` copies them into ``se_plugin/vendor``; from a source checkout the
backend package is used directly.
"""

import os

if os.path.isdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")):
    from .vendor import bridge, schema, wire  # noqa: F401  (installed plug-in)
else:
    from backend.transport import bridge, schema, wire  # noqa: F401  (source checkout)
