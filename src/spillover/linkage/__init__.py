"""Linkage models shipped with spillover (Splink settings JSON, docs/linkage.md)."""
