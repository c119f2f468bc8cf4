"""The one-pass audit: every entry explained and scored in a few vectorized passes.

:func:`spillover.engines.search.explain` searches from one subject at a time. For a whole
blacklist that is one search per entry; this package instead runs the *same*
layered search for all entries at once on integer arrays (numpy), one layer per
loan depth, and gives the same best path, score and reason codes as the core
(tests hold the two to each other). It is a compiled kernel behind the core,
not a second definition of what a path means: every step kind, factor, reason
code and the score come from :mod:`spillover.rules`, compiled into lookup tables
indexed by integer codes (``USE_KIND``, ``SUBJECT_PHONE_KIND``, ...: :mod:`.tables`).

* ties are precomputed once (:mod:`.index`): person -> loan (own loans, and loans
  naming a phone the person owned on the application day), phone -> loan (for phone
  subjects), loan -> borrower;
* every layer of the pass (:mod:`.audit`) gathers the next ties of all frontier labels
  with CSR offsets (a part of the frontier at a time), keeps loans applied no later than
  each entry's listing (and of a label's own loans, which lead back to its person, only
  its best origin when the pass wants each entry's best path alone), reduces to
  the best label per (entry, node) with the core's order (responsibility, then the
  fixed-shape key ``(phone, role, loan, borrower)`` per layer, as integer codes that
  sort like the core's strings), and drops labels an earlier layer beats;
* reach (origin platform -> listing) is computed per entry and platform with an
  origin loan (:mod:`.reach`): one search of the sharing graph of each listing day from
  those platforms, then along the copy chains, each entry once;
* the result reads back as audit rows (:mod:`.result`);
* every entry's paths (not only the best), as ``explain`` lists them with their routes,
  come from the same pass keeping the best label per (entry, origin loan)
  (:func:`.audit.origins_pass`), read back into steps by :func:`.paths.every_path` (the
  write-back of every path uses it).
"""

from ...facts.columns import FOREVER, NEVER, Columns, columns_from_dataset, columns_from_facts
from .audit import Index, Progress, audit_pass
from .codes import coded_only, codes_of
from .index import CodedGraph
from .reach import Reach, entry_reach
from .result import ROUND, AuditResult, path_codes, round6, row_columns, rows
from .tables import (
    KIND_CODE,
    LOAN_KIND,
    MATCH_KEYS,
    OWNS_KIND,
    OWNS_UNVERIFIED,
    ROLE_NAMES,
    SUBJECT_PHONE_KIND,
    USE_KIND,
)

__all__ = [
    "FOREVER",
    "KIND_CODE",
    "LOAN_KIND",
    "MATCH_KEYS",
    "NEVER",
    "OWNS_KIND",
    "OWNS_UNVERIFIED",
    "ROLE_NAMES",
    "ROUND",
    "SUBJECT_PHONE_KIND",
    "USE_KIND",
    "AuditResult",
    "CodedGraph",
    "Columns",
    "Index",
    "Progress",
    "Reach",
    "audit_pass",
    "coded_only",
    "codes_of",
    "columns_from_dataset",
    "columns_from_facts",
    "entry_reach",
    "path_codes",
    "round6",
    "row_columns",
    "rows",
]
