"""RealCheck: tell real photographs from AI-generated images.

`realcheck.cli` is the one command line; each face (model, server, streamlit_app) owns its commands.
"""

from __future__ import annotations

import pkgutil

# Run from a checkout, this folder shadows the installed package; an editable install keeps the faces
# (model/, server/, streamlit_app/) under `realcheck/` in a link tree that tools can read (scripts/setup.sh).
# Spanning both lets `realcheck.model` resolve either way.
__path__ = pkgutil.extend_path(__path__, __name__)

from realcheck.model import __version__  # noqa: E402

__all__ = ["__version__"]
