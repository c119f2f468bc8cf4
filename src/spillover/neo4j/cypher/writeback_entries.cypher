// audit --write-back (spillover.neo4j.writeback.write_back): one batch of entries' results.
// $rows: {id, contamination, verdict, reason_codes, traces: [{loan, rank, responsibility,
// hops, labels, keys, steps, walks, roles, periods}]}; $policy_name, $policy_version,
// $policy_digest, $audited_at, $run (the run's id, on every entry it writes). Replaces
// what an earlier run stored (idempotent). Runs in the transaction that claimed the
// marker for $run (writeback_claim).
UNWIND $rows AS row
MATCH (e:Entry {id: row.id})
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
