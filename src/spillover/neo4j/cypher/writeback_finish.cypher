// audit --write-back: run $run wrote every entry it read and cleared the older results:
// its results become the current ones (results_*, results_graph = $graph: the run's seal
// of the graph it read and of every entry's results; results_read = $read: the same of
// the rows in the order read; results_chain = $chain: the run's last commit before this
// one and its key, when nobody else committed from its start on, else null), and the
// run in progress is removed.
// Nothing happens (no row) when another write-back took the marker over, or when not
// every one of the $entries entries it wrote carries this run's results, unless an ingest
// changed the data since the run read it (raised data_version): one that removed or
// rewrote an entry took the entry's results with it, and the run's results are recorded,
// stale (results_data_version is the version it read). A retry of a transaction that
// committed finds the run already finished and returns the same row.
// The marker is locked before it is read (as in writeback_claim).
MATCH (d:Dataset {key: 'spillover'})
SET d.writeback_lock = true
REMOVE d.writeback_lock
WITH d, properties(d) AS m
WITH d,
     m.writeback_run = $run
       AND (coalesce(m.data_version, 0) <> m.writeback_data_version
            OR COUNT { (e:Entry) WHERE e.audit_run = $run } = $entries) AS finishing,
     m.writeback_run IS NULL AND m.results_run = $run AS finished
WHERE finishing OR finished
FOREACH (_ IN CASE WHEN finishing THEN [1] ELSE [] END |
  SET d.results_run = $run,
      d.results_data_version = d.writeback_data_version,
      d.results_policy_name = d.writeback_policy_name,
      d.results_policy_version = d.writeback_policy_version,
      d.results_policy_digest = d.writeback_policy_digest,
      d.results_audited_at = d.writeback_started_at,
      d.results_finished_at = $finished_at,
      d.results_entries = $entries,
      d.results_traces = $traces,
      d.results_graph = $graph,
      d.results_read = $read,
      d.results_chain = $chain
  REMOVE d.writeback_run, d.writeback_started_at, d.writeback_policy_name,
         d.writeback_policy_version, d.writeback_policy_digest, d.writeback_data_version,
         d.writeback_total, d.writeback_written, d.writeback_commit
)
RETURN coalesce(properties(d).data_version, 0) AS data_version,
       d.results_data_version AS results_data_version
