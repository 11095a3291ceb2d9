"""Artifacts: the self-describing model folder, its metadata table, its model card and its exports."""
