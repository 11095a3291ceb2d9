"""RealCheck: tell real photographs from AI-generated images.

`realcheck.cli` is the one command line; each face (model, server, streamlit_app) owns its commands.
"""

from __future__ import annotations

from realcheck.model import __version__

__all__ = ["__version__"]
