// audit --write-back: claim the dataset marker for run $run before the graph is read.
// Refused (nothing set, complete = false returned) while an ingest has not finished;
// otherwise the marker records the run in progress (writeback_*) and the data version
// the run reads (a later ingest that changes the data raises it: the results go stale).
// Also returns the last completed run, its seals (results_graph: what it read, whatever the
// order of the rows, and wrote; results_read: the same of the rows in the order it read
// them), the data version it read, its entries and TRACED_TO, and results_chain (its
// last commit before its finish, when nobody else committed during the run): a run that
// finds the same can skip its paths, and one that finds nothing committed since that
// run's finish, its read of the graph.
// The marker is locked before it is read (as in writeback_claim): an ingest that starts
// while this waits for the lock is seen.
MERGE (d:Dataset {key: 'spillover'})
SET d.writeback_lock = true
REMOVE d.writeback_lock
WITH d, properties(d) AS m
WITH d, m, coalesce(m.complete, true) AS complete
FOREACH (_ IN CASE WHEN complete THEN [1] ELSE [] END |
  SET d.writeback_run = $run,
      d.writeback_started_at = $audited_at,
      d.writeback_policy_name = $policy_name,
      d.writeback_policy_version = $policy_version,
      d.writeback_policy_digest = $policy_digest,
      d.writeback_data_version = coalesce(m.data_version, 0),
      d.writeback_total = null,
      d.writeback_written = 0
)
RETURN complete,
       coalesce(m.data_version, 0) AS data_version,
       m.name AS name,
       m.folder AS folder,
       m.started_at AS ingest_started_at,
       m.results_run AS results_run,
       m.results_graph AS results_graph,
       m.results_read AS results_read,
       m.results_data_version AS results_data_version,
       m.results_chain AS results_chain,
       m.results_entries AS results_entries,
       m.results_traces AS results_traces
