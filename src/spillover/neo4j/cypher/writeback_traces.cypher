// audit --write-back: what each entry's TRACED_TO were when the run read the graph, as
// columns: per entry its id, the run that last wrote its results (audit_run, '' when
// none), the digest of its traces under that run (traces_digest, '' when none) and how
// many TRACED_TO it has. An entry whose new traces digest the same under that run, and
// whose count is the same, is sent without its traces (writeback_entries checks all three
// again in its write transaction).
MATCH (e:Entry)
RETURN collect(e.id) AS id,
       collect(coalesce(e.audit_run, '')) AS run,
       collect(coalesce(e.traces_digest, '')) AS digest,
       collect(COUNT { (e)-[:TRACED_TO]->() }) AS traces
