"""Inference backends behind :func:`vbinfer.inference.fit`; one algorithm per module."""
