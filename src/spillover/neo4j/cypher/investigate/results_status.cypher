// results_status: whether the audit results written back into the graph are current (trace_entry, spread_from, most_harmed and platform_spillover answer only then)
//
// One row, from the dataset marker. `state` is `current` (the last write-back completed
// and no ingest has changed the data since it read the graph), `stale` (an ingest
// changed the data since: run `spillover audit --write-back` again), `incomplete` (a
// write-back started and has not finished, still running or interrupted: the entries
// may hold a mix of two runs' results) or `none` (no complete write-back recorded, or
// one written by a spillover from before the marker recorded runs). The other columns
// say which data version, runs, policies and times.
//
// Command line:
//   spillover query results_status
OPTIONAL MATCH (dataset:Dataset)
WITH properties(dataset) AS marker
RETURN CASE
         WHEN marker.writeback_run IS NOT NULL THEN 'incomplete'
         WHEN marker.results_run IS NULL THEN 'none'
         WHEN marker.results_data_version = coalesce(marker.data_version, 0) THEN 'current'
         ELSE 'stale'
       END AS state,
       marker.name AS dataset,
       coalesce(marker.data_version, 0) AS data_version,
       marker.data_changed_at AS data_changed_at,
       marker.folder AS last_ingest_folder,
       marker.complete AS last_ingest_complete,
       marker.results_run AS results_run,
       marker.results_data_version AS results_data_version,
       marker.results_policy_name AS results_policy_name,
       marker.results_policy_version AS results_policy_version,
       marker.results_audited_at AS results_audited_at,
       marker.results_entries AS results_entries,
       marker.writeback_run AS writeback_run,
       marker.writeback_started_at AS writeback_started_at,
       marker.writeback_policy_name AS writeback_policy_name,
       marker.writeback_policy_version AS writeback_policy_version,
       marker.writeback_written AS writeback_written,
       marker.writeback_total AS writeback_total
