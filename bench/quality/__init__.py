"""Matching-quality benchmark built from ESCO: `python -m bench.quality`."""
