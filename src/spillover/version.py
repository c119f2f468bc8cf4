"""The version of spillover, defined once (hatch reads it from here)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
