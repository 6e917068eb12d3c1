"""nnjax: the networks of Michael Nielsen's *Neural Networks and Deep Learning* in JAX.

The modules are imported by name (``from nnjax import network, fit``); importing ``nnjax``
itself loads nothing but the version.
"""

__version__ = "0.1.0"
