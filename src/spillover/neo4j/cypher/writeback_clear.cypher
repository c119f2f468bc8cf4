// audit --write-back: remove the results of an earlier run from up to $limit entries that
// run $run did not write (e.g. entries ingested while it ran, or results of a run that
// was interrupted). Runs in the transaction that claimed the marker for $run.
MATCH (e:Entry)
WHERE e.audited_at IS NOT NULL AND coalesce(e.audit_run, '') <> $run
WITH e LIMIT $limit
CALL (e) {
  MATCH (e)-[old:TRACED_TO]->(:Loan)
  DELETE old
}
REMOVE e.contamination, e.verdict, e.reason_codes, e.policy_name, e.policy_version,
       e.policy_digest, e.audited_at, e.audit_run, e.traces_digest
RETURN count(e) AS cleared
