// audit --write-back (spillover.neo4j.writeback.write_back): one batch of entries' results,
// as columns. Per entry i: $ids[i], $contamination[i], $verdict[i], $reason_codes[i] and
// its traces j from $first[i] to $first[i + 1] - 1 (in rank order). Per trace j: $loan[j],
// $responsibility[j], $hops[j], its first node $start[j] and, from $off[j] to $off[j + 1]
// - 1 in $node and $kind, each step's target node and kind. A node n is $word_label[n],
// $word_key[n]; a step kind k is $kind_step[k], $kind_walk[k], $kind_role[k],
// $kind_period[k]. So each TRACED_TO gets: rank (its place among the entry's traces, from
// 1), responsibility, hops, labels and keys (its nodes), steps, walks, roles, periods.
// $policy_name, $policy_version, $policy_digest, $audited_at, $run (the run's id, on every
// entry it writes). Replaces what an earlier run stored (idempotent: a retry, or a second
// run, changes nothing). Runs in the transaction that claimed the marker for $run
// (writeback_claim).
// An entry whose traces this run found unchanged (the client read its audit_run, its
// traces_digest and its number of TRACED_TO, and its traces digest the same under that
// run: $expect[i], $was_run[i], $count[i]; null $expect[i] for every other entry) comes
// without its traces (an empty range in $first): it keeps its TRACED_TO as they are, and
// only when all three still hold here; when one does not (the graph moved since the
// read), the entry is not written at all and counted in `missed` (the client then sends
// the whole batch again, with every trace, in the same transaction). Every entry written
// gets traces_digest = $digest[i] (its traces' digest under this run).
// An entry an earlier run scored otherwise (contamination, verdict or reason codes; its
// score, or the stale_* an ingest that changed the entry kept of it) keeps
// that run's answer as previous_contamination, previous_verdict, previous_reason_codes and
// previous_audited_at, and changed_at = $audited_at (the last change; a rerun of the same
// run, or of an unchanged answer, keeps them: changes_since lists them). An entry no run
// scored, while an earlier run completed ($earlier_run, the marker's results_run when this
// run claimed it; null for the first run), was added since that run read the graph: it
// gets changed_at = $audited_at and no previous_* (changes_since lists it as added or new).
UNWIND range(0, size($ids) - 1) AS i
MATCH (e:Entry {id: $ids[i]})
WITH e, i, properties(e) AS m
WITH e, i, m,
     $expect[i] IS NOT NULL
     AND NOT coalesce(m.traces_digest = $expect[i] AND m.audit_run = $was_run[i]
                      AND COUNT { (e)-[:TRACED_TO]->() } = $count[i], false) AS missed
CALL (e, i, m, missed) {
WITH e, i, m WHERE NOT missed
WITH e, i, {contamination: coalesce(m.contamination, m.stale_contamination),
            verdict: coalesce(m.verdict, m.stale_verdict),
            reason_codes: coalesce(m.reason_codes, m.stale_reason_codes),
            audited_at: coalesce(m.audited_at, m.stale_audited_at),
            audit_run: coalesce(m.audit_run, m.stale_audit_run)} AS was
FOREACH (_ IN CASE
    WHEN was.verdict IS NOT NULL AND was.audit_run <> $run
     AND (was.contamination <> $contamination[i] OR was.verdict <> $verdict[i]
          OR coalesce(was.reason_codes, '') <> $reason_codes[i])
    THEN [1] ELSE [] END |
  SET e.previous_contamination = was.contamination,
      e.previous_verdict = was.verdict,
      e.previous_reason_codes = was.reason_codes,
      e.previous_audited_at = was.audited_at,
      e.changed_at = $audited_at
)
FOREACH (_ IN CASE
    WHEN was.verdict IS NULL AND $earlier_run IS NOT NULL THEN [1] ELSE [] END |
  SET e.previous_contamination = null,
      e.previous_verdict = null,
      e.previous_reason_codes = null,
      e.previous_audited_at = null,
      e.changed_at = $audited_at
)
REMOVE e.stale_contamination, e.stale_verdict, e.stale_reason_codes, e.stale_audited_at,
       e.stale_audit_run
SET e.contamination = $contamination[i],
    e.verdict = $verdict[i],
    e.reason_codes = $reason_codes[i],
    e.policy_name = $policy_name,
    e.policy_version = $policy_version,
    e.policy_digest = $policy_digest,
    e.audited_at = $audited_at,
    e.audit_run = $run,
    e.traces_digest = $digest[i]
WITH e, i WHERE $expect[i] IS NULL
// Its TRACED_TO: an old relationship equal to one of the entry's traces (the same loan and
// the same properties, nothing more: so the same rank) stays as it is; the others are
// deleted (one of two equal old ones too), and the traces no old one equals are created.
// A rerun whose paths did not move writes no relationship; the graph is the same as
// deleting them all and creating the entry's traces.
WITH e, [j IN range($first[i], $first[i + 1] - 1) |
         {loan: $loan[j], rank: j - $first[i] + 1, responsibility: $responsibility[j],
          hops: $hops[j],
          labels: [n IN [$start[j]] + $node[$off[j]..$off[j + 1]] | $word_label[n]],
          keys: [n IN [$start[j]] + $node[$off[j]..$off[j + 1]] | $word_key[n]],
          steps: [k IN $kind[$off[j]..$off[j + 1]] | $kind_step[k]],
          walks: [k IN $kind[$off[j]..$off[j + 1]] | $kind_walk[k]],
          roles: [k IN $kind[$off[j]..$off[j + 1]] | $kind_role[k]],
          periods: [k IN $kind[$off[j]..$off[j + 1]] | $kind_period[k]]}] AS traces
WITH e, traces, [(e)-[t:TRACED_TO]->(l:Loan) | [t, t {.*, loan: l.id}]] AS olds
WITH e, traces, olds,
     [o IN olds | coalesce(o[1] = head([x IN traces WHERE x.rank = o[1].rank]), false)] AS same
WITH e, traces, olds,
     [i IN range(0, size(olds) - 1) |
      same[i] AND NOT olds[i][1].rank IN [j IN range(0, i - 1) WHERE same[j] | olds[j][1].rank]]
     AS keep
FOREACH (t IN [i IN range(0, size(olds) - 1) WHERE NOT keep[i] | olds[i][0]] | DELETE t)
WITH e, traces, [i IN range(0, size(olds) - 1) WHERE keep[i] | olds[i][1].rank] AS kept
CALL (e, traces, kept) {
  UNWIND traces AS tr
  WITH tr WHERE NOT tr.rank IN kept
  MATCH (l:Loan {id: tr.loan})
  CREATE (e)-[:TRACED_TO {rank: tr.rank, responsibility: tr.responsibility, hops: tr.hops,
                          labels: tr.labels, keys: tr.keys, steps: tr.steps, walks: tr.walks,
                          roles: tr.roles, periods: tr.periods}]->(l)
}
}
RETURN count(CASE WHEN NOT missed THEN 1 END) AS written,
       count(CASE WHEN missed THEN 1 END) AS missed
