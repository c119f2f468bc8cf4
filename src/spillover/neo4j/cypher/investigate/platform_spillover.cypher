// platform_spillover: per platform, its listings, the share that is spillover, and through which partner the spillover arrived
//
// One row per platform and way in: `listings` (all its entries), `spillover` (those the
// write-back judged $spillover) and `share`; then, for its spillover entries, where the
// best path (TRACED_TO rank 1) came from: `via` is the sharing partner that passed the
// default on (the platform just before it on the route), or, when the path's last step is
// a copy, the platform of the entry it copied (E3 copied from E2 copied from E1: E2's
// platform), or empty when the origin loan was at the platform itself; `via_spillover`
// counts those entries. Platforms with no spillover have one row with `via` empty and
// `via_spillover` 0.
// Needs `spillover audit --write-back`.
// Reads the results of the last complete `spillover audit --write-back` only, and only
// while no ingest has changed the data since that run read the graph (the dataset
// marker says so): otherwise it returns no rows, `spillover query` refuses with the
// reason, and the saved query results_status shows it (docs/investigating.md#stale-results).
// @needs: write-back
//
// @param spillover: string = Verdict.SPILLOVER. The verdict of a spillover listing (spillover.rules.Verdict; `spillover query` passes it).
//
// In Neo4j Browser:
//   :param spillover => 'spillover'
// Command line:
//   spillover query platform_spillover
OPTIONAL MATCH (dataset:Dataset)
WITH properties(dataset) AS marker
WITH CASE
       WHEN marker.writeback_run IS NULL
        AND marker.results_data_version = coalesce(marker.data_version, 0)
       THEN marker.results_run
     END AS run
WHERE run IS NOT NULL
MATCH (platform:Platform)
OPTIONAL MATCH (entry:Entry)-[:ON]->(platform)
WITH run, platform,
     count(entry) AS listings,
     count(CASE WHEN entry.verdict = $spillover AND entry.audit_run = run THEN 1 END) AS spillover
CALL (platform, run) {
  OPTIONAL MATCH (entry:Entry {verdict: $spillover})-[:ON]->(platform)
  WHERE entry.audit_run = run
  OPTIONAL MATCH (entry)-[t:TRACED_TO {rank: 1}]->(:Loan)
  WITH entry, t,
       CASE WHEN t IS NULL THEN []
            ELSE [i IN range(0, size(t.labels) - 1) WHERE t.labels[i] = 'Platform' | t.keys[i]]
       END AS route,
       // the last step a copy (entry to entry): the entry it copied
       CASE WHEN t IS NOT NULL AND size(t.labels) > 1 AND t.labels[-2] = 'Entry'
            THEN t.keys[-2] END AS copied_id
  OPTIONAL MATCH (copied:Entry {id: copied_id})-[:ON]->(copied_platform:Platform)
  // a copy came via the platform of the entry it copied (which the route does not name);
  // else the route's last platform listed first, and before it the partner that shared with it
  WITH entry, route,
       CASE WHEN copied_id IS NOT NULL THEN copied_platform.id
            WHEN size(route) = 0 THEN null
            WHEN route[-1] <> platform.id THEN route[-1]
            WHEN size(route) > 1 THEN route[-2]
            ELSE null END AS via
  RETURN via, count(entry) AS via_spillover
}
RETURN platform.id AS platform_id,
       platform.name AS platform,
       listings,
       spillover,
       CASE WHEN listings = 0 THEN 0.0 ELSE round(toFloat(spillover) / listings, 6) END AS share,
       via,
       via_spillover
ORDER BY share DESC, platform_id, via_spillover DESC, via
