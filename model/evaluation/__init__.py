"""Evaluation: metrics, threshold, band and calibration; the cross-collection protocol; scoring labelled folders per source."""
