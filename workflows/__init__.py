"""Deterministic workflow code and the contracts it speaks."""
