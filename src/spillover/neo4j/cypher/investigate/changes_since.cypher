// changes_since: entries whose score moved, or that were added, at a write-back since a time (previous and current score and verdict)
//
// Every entry an `spillover audit --write-back` scored otherwise than the run before it
// (after `ingest` of a corrected folder, say), or scored first (an entry the ingest
// added: no previous_*), changed at or after $since: its previous contamination, verdict
// and reason codes (previous_*), the current ones, and when it changed (changed_at, the
// run's audited_at). lifted: it was spillover and no longer is; new: it is spillover and
// was not (or was not there); added: added and not spillover; changed: any other move.
// The statuses are `spillover changes`'s. Entries removed by the ingest are gone from the
// graph. The first write-back of a dataset lists nothing: there was no run before it.
// Needs `spillover audit --write-back` (twice: before and after the change).
// Reads the results of the last complete `spillover audit --write-back` only, and only
// while no ingest has changed the data since that run read the graph (the dataset
// marker says so): otherwise it returns no rows, `spillover query` refuses with the
// reason, and the saved query results_status shows it (docs/investigating.md#stale-results).
// @needs: write-back
//
// @param since: datetime = 1970-01-01. The earliest change to list: an ISO date or date-time (UTC when no offset).
// @param spillover: string = Verdict.SPILLOVER. The verdict of a spillover listing (spillover.rules.Verdict; `spillover query` passes it).
// @param limit: integer[1..] = 1000. How many entries to list (at least 1).
//
// In Neo4j Browser:
//   :param since => '2026-01-01'
//   :param spillover => 'spillover'
//   :param limit => 1000
// Command line:
//   spillover query changes_since --param since=2026-12-01T00:00:00Z
OPTIONAL MATCH (dataset:Dataset)
WITH properties(dataset) AS marker
WITH CASE
       WHEN marker.writeback_run IS NULL
        AND marker.results_data_version = coalesce(marker.data_version, 0)
       THEN marker.results_run
     END AS run
WHERE run IS NOT NULL
MATCH (entry:Entry)
WHERE entry.audit_run = run
WITH entry, properties(entry) AS p
WHERE p.changed_at IS NOT NULL AND p.changed_at >= datetime($since)
RETURN entry.id AS entry_id,
       entry.platform_id AS platform_id,
       CASE
         WHEN p.previous_verdict = $spillover AND entry.verdict <> $spillover THEN 'lifted'
         WHEN entry.verdict = $spillover
          AND coalesce(p.previous_verdict <> $spillover, true) THEN 'new'
         WHEN p.previous_verdict IS NULL THEN 'added'
         ELSE 'changed'
       END AS status,
       p.previous_contamination AS previous_contamination,
       entry.contamination AS contamination,
       p.previous_verdict AS previous_verdict,
       entry.verdict AS verdict,
       p.previous_reason_codes AS previous_reason_codes,
       entry.reason_codes AS reason_codes,
       toString(p.changed_at) AS changed_at
ORDER BY changed_at DESC, entry_id
LIMIT $limit
