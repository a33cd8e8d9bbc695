"""The GIMP 3 plug-in (Filters → Semantic Enhance) and its installer.

``plugin_gimp/semantic_enhance/`` is the folder that lands in GIMP's plug-ins directory: the entry file
``semantic_enhance.py`` (GIMP side: procedures, Gegl pixels, layers) and the ``se_plugin`` package.
``se_plugin`` keeps GIMP-free parts (settings, transport, request building) importable without GIMP,
so the host tests exercise them too. ``install.py`` copies the folder and vendors the backend's
``schema.py``, ``wire.py``, descriptor set and ``bridge.py`` next to it.
"""
