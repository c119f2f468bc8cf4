// audit --write-back: remove the results of an earlier run from up to $limit entries this
// run did not write ($audited_at is this run's time), e.g. entries ingested while it ran.
MATCH (e:Entry)
WHERE e.audited_at IS NOT NULL AND e.audited_at <> $audited_at
WITH e LIMIT $limit
CALL (e) {
  MATCH (e)-[old:TRACED_TO]->(:Loan)
  DELETE old
}
REMOVE e.contamination, e.verdict, e.reason_codes, e.policy_name, e.policy_version,
       e.policy_digest, e.audited_at
RETURN count(e) AS cleared
