"""RealCheck model package: data, training, evaluation and the artifact that every face serves.

Importing this package does no work and does not import TensorFlow; the heavy modules load on use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Detector", "Prediction", "load_detector", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import realcheck.model` (and `realcheck --help`) stays fast.
    if name in {"Detector", "Prediction", "load_detector"}:
        from realcheck.model.scoring import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'realcheck.model' has no attribute {name!r}")
