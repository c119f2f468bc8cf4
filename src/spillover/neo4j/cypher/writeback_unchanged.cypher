// audit --write-back (spillover.neo4j.writeback.write_back): the entries of one batch
// whose traces and answer did not move since the run read the graph, as columns. Per
// entry i: $ids[i], what the client read of it ($expect[i] its traces_digest, $was_run[i]
// its audit_run, $count[i] its number of TRACED_TO), its answer ($contamination[i],
// $verdict[i], $reason_codes[i], the same as stored, under this run's $policy_name,
// $policy_version and $policy_digest) and $digest[i], its traces' digest under this run
// ($run). When all of that still holds here and the entry holds no stale_* property, it
// gets audited_at = $audited_at, audit_run = $run and traces_digest = $digest[i]: what
// writeback_entries would leave on it (the same answer, so no previous_*; the same
// traces, so its TRACED_TO as they are), in fewer reads and writes. When any of it does
// not hold (the graph moved since the read), the entry is not written and counted in
// `missed` (the client then sends the whole batch to writeback_entries, with every
// trace, in the same transaction). Idempotent: a retry changes nothing.
UNWIND range(0, size($ids) - 1) AS i
MATCH (e:Entry {id: $ids[i]})
WITH e, i,
     coalesce(e.traces_digest = $expect[i] AND e.audit_run = $was_run[i]
              AND e.contamination = $contamination[i] AND e.verdict = $verdict[i]
              AND e.reason_codes = $reason_codes[i] AND e.policy_name = $policy_name
              AND e.policy_version = $policy_version AND e.policy_digest = $policy_digest
              AND e.stale_contamination IS NULL AND e.stale_verdict IS NULL
              AND e.stale_reason_codes IS NULL AND e.stale_audited_at IS NULL
              AND e.stale_audit_run IS NULL
              AND COUNT { (e)-[:TRACED_TO]->() } = $count[i], false) AS same
FOREACH (_ IN CASE WHEN same THEN [1] ELSE [] END |
  SET e.audited_at = $audited_at, e.audit_run = $run, e.traces_digest = $digest[i]
)
RETURN count(CASE WHEN same THEN 1 END) AS written,
       count(CASE WHEN NOT same THEN 1 END) AS missed
