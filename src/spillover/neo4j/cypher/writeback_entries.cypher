// audit --write-back (spillover.neo4j.writeback.write_back): one batch of entries' results.
// $rows: {id, contamination, verdict, reason_codes, traces: [{loan, rank, responsibility,
// hops, labels, keys, steps, walks, roles, periods}]}; $policy_name, $policy_version,
// $policy_digest, $audited_at, $run (the run's id, on every entry it writes). Replaces
// what an earlier run stored (idempotent). Runs in the transaction that claimed the
// marker for $run (writeback_claim).
// An entry an earlier run scored otherwise (contamination, verdict or reason codes; its
// score, or the stale_* an ingest that changed the entry kept of it) keeps
// that run's answer as previous_contamination, previous_verdict, previous_reason_codes and
// previous_audited_at, and changed_at = $audited_at (the last change; a rerun of the same
// run, or of an unchanged answer, keeps them: changes_since lists them).
UNWIND $rows AS row
MATCH (e:Entry {id: row.id})
WITH e, row, properties(e) AS m
WITH e, row, {contamination: coalesce(m.contamination, m.stale_contamination),
              verdict: coalesce(m.verdict, m.stale_verdict),
              reason_codes: coalesce(m.reason_codes, m.stale_reason_codes),
              audited_at: coalesce(m.audited_at, m.stale_audited_at),
              audit_run: coalesce(m.audit_run, m.stale_audit_run)} AS was
FOREACH (_ IN CASE
    WHEN was.verdict IS NOT NULL AND was.audit_run <> $run
     AND (was.contamination <> row.contamination OR was.verdict <> row.verdict
          OR coalesce(was.reason_codes, '') <> row.reason_codes)
    THEN [1] ELSE [] END |
  SET e.previous_contamination = was.contamination,
      e.previous_verdict = was.verdict,
      e.previous_reason_codes = was.reason_codes,
      e.previous_audited_at = was.audited_at,
      e.changed_at = $audited_at
)
REMOVE e.stale_contamination, e.stale_verdict, e.stale_reason_codes, e.stale_audited_at,
       e.stale_audit_run
SET e.contamination = row.contamination,
    e.verdict = row.verdict,
    e.reason_codes = row.reason_codes,
    e.policy_name = $policy_name,
    e.policy_version = $policy_version,
    e.policy_digest = $policy_digest,
    e.audited_at = $audited_at,
    e.audit_run = $run
WITH e, row
CALL (e) {
  MATCH (e)-[old:TRACED_TO]->(:Loan)
  DELETE old
}
CALL (e, row) {
  UNWIND row.traces AS tr
  MATCH (l:Loan {id: tr.loan})
  CREATE (e)-[t:TRACED_TO]->(l)
  SET t.rank = tr.rank,
      t.responsibility = tr.responsibility,
      t.hops = tr.hops,
      t.labels = tr.labels,
      t.keys = tr.keys,
      t.steps = tr.steps,
      t.walks = tr.walks,
      t.roles = tr.roles,
      t.periods = tr.periods
}
RETURN count(*) AS written
