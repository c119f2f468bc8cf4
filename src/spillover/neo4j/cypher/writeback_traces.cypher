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
// properties(e), and TRACED_TO counted by type(): a database where no write-back ran, or
// no ingest ever kept a stale_* answer, raises no "does not exist" notification
WITH e, properties(e) AS m
RETURN collect(m.id) AS id,
       collect(coalesce(m.audit_run, '')) AS run,
       collect(coalesce(m.traces_digest, '')) AS digest,
       collect(COUNT { (e)-[r]->() WHERE type(r) = 'TRACED_TO' }) AS traces,
       collect([m.contamination, m.verdict, m.reason_codes, m.policy_name, m.policy_version,
                m.policy_digest,
                m.stale_contamination IS NOT NULL OR m.stale_verdict IS NOT NULL
                OR m.stale_reason_codes IS NOT NULL OR m.stale_audited_at IS NOT NULL
                OR m.stale_audit_run IS NOT NULL]) AS answer
