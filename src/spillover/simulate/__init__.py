"""Research runs: listing rules, simulated worlds, the metrics of spillover harm, plots."""

from .engine import ENGINES
from .listing import MAX_HOPS, ListingRule, load_rule, shipped_rule_names
from .run import compare_runs, compare_text, expand_rules, metrics_text, simulate

__all__ = [
    "ENGINES",
    "MAX_HOPS",
    "ListingRule",
    "compare_runs",
    "compare_text",
    "expand_rules",
    "load_rule",
    "metrics_text",
    "shipped_rule_names",
    "simulate",
]
