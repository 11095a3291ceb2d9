"""Scoring: from an image to a verdict (the `Detector` every face uses), its provenance, its runtimes and its Grad-CAM explanation."""
