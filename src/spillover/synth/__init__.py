"""Synthetic populations (people, phones, loans, platforms, blacklists; optionally records)."""

from .generate import MECHANISMS, SynthParams, SynthSummary, generate

__all__ = [
    "MECHANISMS",
    "SynthParams",
    "SynthSummary",
    "generate",
]
