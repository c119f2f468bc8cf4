"""The command line: parse, one library call, print (the script ``spillover`` is ``main``)."""

from .commands import cli, main

__all__ = ["cli", "main"]
