// audit --write-back (spillover.neo4j.writeback.write_back): a rerun that finds nothing
// committed since the last completed run ($was_run) finished (its results_chain): every
// entry holds that run's results for the graph as it is, so this run writes only its
// marks, without reading the graph. The entries whose traces_digest begins with two hex
// digits from $lo (null: from the first) to $hi excluded (null: to the last) are this
// transaction's part; one part, both null, holds every entry (up to
// writeback.SEALED_PART of them: an entry without a digest is in no other, so that the
// parts then fall short of the count and the run reads the graph). An entry an earlier
// part marked (its digest moved, maybe into this part's range) holds $run: it is in no
// later part. Each entry gets
// audited_at = $audited_at,
// audit_run = $run and its traces_digest moved to $run: the digest XORs the traces'
// digest with one of the run's id, so the move is the same XOR for every entry, done one
// byte (two hex digits) at a time by $moves, a map per byte from each of its 256 values
// to the moved one. An entry that does not hold
// $was_run's results under this run's policy ($policy_name, $policy_version,
// $policy_digest), holds a stale_* property or has no digest of that form is not written
// and counted in `missed` (the client rolls the transaction back and reads the graph).
// One row per verdict. A retry of a transaction that did not commit writes the same;
// one after a commit whose answer was lost finds the entries holding $run and writes
// none of them (the parts then fall short of the count: the run reads the graph).
MATCH (e:Entry)
WITH e, properties(e) AS m
WHERE ($lo IS NULL OR substring(m.traces_digest, 0, 2) >= $lo)
  AND ($hi IS NULL OR substring(m.traces_digest, 0, 2) < $hi)
  AND coalesce(m.audit_run <> $run, true)
WITH e, m,
     coalesce(m.audit_run = $was_run AND m.policy_name = $policy_name
              AND m.policy_version = $policy_version AND m.policy_digest = $policy_digest
              AND m.stale_contamination IS NULL AND m.stale_verdict IS NULL
              AND m.stale_reason_codes IS NULL AND m.stale_audited_at IS NULL
              AND m.stale_audit_run IS NULL AND size(m.traces_digest) = 32, false) AS same
WITH e, m.verdict AS verdict, same,
     CASE WHEN same
       THEN reduce(s = '', k IN range(0, 15) | s + $moves[k][substring(m.traces_digest, 2 * k, 2)])
     END AS moved
WITH e, verdict, same AND coalesce(size(moved) = 32, false) AS same, moved
FOREACH (_ IN CASE WHEN same THEN [1] ELSE [] END |
  SET e.audited_at = $audited_at, e.audit_run = $run, e.traces_digest = moved
)
RETURN verdict,
       count(CASE WHEN same THEN 1 END) AS written,
       count(CASE WHEN NOT same THEN 1 END) AS missed
