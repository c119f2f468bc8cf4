// audit --write-back (spillover.neo4j.writeback.write_back): one batch of entries' results.
// $rows: {id, contamination, verdict, reason_codes, traces: [{loan, rank, responsibility,
// hops, labels, keys, steps, walks, roles, periods}]}; $policy_name, $policy_version,
// $policy_digest, $audited_at, $run (the run's id, on every entry it writes). Replaces
// what an earlier run stored (idempotent: a retry, or a second run, changes nothing).
// Runs in the transaction that claimed the marker for $run (writeback_claim).
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
// Its TRACED_TO: an old relationship equal to one of the row's traces (the same loan and
// the same properties, nothing more) stays as it is; the others are deleted (one of two
// equal old ones too), and the traces no old one equals are created. A rerun whose paths
// did not move writes no relationship; the graph is the same as deleting them all and
// creating the row's traces.
WITH e, row, [(e)-[t:TRACED_TO]->(l:Loan) | [t, t {.*, loan: l.id}]] AS olds
WITH e, row, olds,
     [i IN range(0, size(olds) - 1) |
      coalesce(olds[i][1] IN row.traces
               AND NOT olds[i][1] IN [j IN range(0, i - 1) | olds[j][1]], false)] AS keep
FOREACH (t IN [i IN range(0, size(olds) - 1) WHERE NOT keep[i] | olds[i][0]] | DELETE t)
WITH e, row, [i IN range(0, size(olds) - 1) WHERE keep[i] | olds[i][1]] AS kept
CALL (e, row, kept) {
  UNWIND row.traces AS tr
  WITH tr WHERE NOT tr IN kept
  MATCH (l:Loan {id: tr.loan})
  CREATE (e)-[:TRACED_TO {rank: tr.rank, responsibility: tr.responsibility, hops: tr.hops,
                          labels: tr.labels, keys: tr.keys, steps: tr.steps, walks: tr.walks,
                          roles: tr.roles, periods: tr.periods}]->(l)
}
RETURN count(*) AS written
