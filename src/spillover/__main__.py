"""``python -m spillover``: the command line (:mod:`spillover.cli`)."""

from .cli import main

main()
