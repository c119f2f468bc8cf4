// audit --write-back: what each entry's TRACED_TO were when the run read the graph, as
// columns: per entry its id, the run that last wrote its results (audit_run, '' when
// none), the digest of its traces under that run (traces_digest, '' when none) and how
// many TRACED_TO it has. An entry whose new traces digest the same under that run, and
// whose count is the same, is sent without its traces (writeback_entries checks all three
// again in its write transaction). Beside them its stored answer (contamination, verdict,
// reason_codes, policy_name, policy_version, policy_digest; null when none) and whether it
// holds any stale_* property: an entry whose answer is also the same, and holds none, is
// sent to writeback_unchanged, which checks all of it again.
MATCH (e:Entry)
RETURN collect(e.id) AS id,
       collect(coalesce(e.audit_run, '')) AS run,
       collect(coalesce(e.traces_digest, '')) AS digest,
       collect(COUNT { (e)-[:TRACED_TO]->() }) AS traces,
       collect([e.contamination, e.verdict, e.reason_codes, e.policy_name, e.policy_version,
                e.policy_digest,
                e.stale_contamination IS NOT NULL OR e.stale_verdict IS NOT NULL
                OR e.stale_reason_codes IS NOT NULL OR e.stale_audited_at IS NOT NULL
                OR e.stale_audit_run IS NOT NULL]) AS answer
