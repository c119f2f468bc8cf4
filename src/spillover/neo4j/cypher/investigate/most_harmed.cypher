// most_harmed: people ranked by their spillover listings (how many, on which platforms, the worst score)
//
// Every entry the write-back judged spillover ($spillover), counted against the person it
// lists (the subject, the owner of the listed phone on the listing day, or the person a
// listed platform record is matched to; a phone with no known owner that day, or an
// unresolved record, counts for nobody): the number of such listings, the platforms that
// list them, and the worst (highest) contamination among them.
// Needs `spillover audit --write-back`.
// Reads the results of the last complete `spillover audit --write-back` only, and only
// while no ingest has changed the data since that run read the graph (the dataset
// marker says so): otherwise it returns no rows, `spillover query` refuses with the
// reason, and the saved query results_status shows it (docs/investigating.md#stale-results).
// @needs: write-back
//
// @param spillover: string = Verdict.SPILLOVER. The verdict of a spillover listing (spillover.rules.Verdict; `spillover query` passes it).
// @param limit: integer[1..] = 25. How many people to list (at least 1).
//
// In Neo4j Browser:
//   :param spillover => 'spillover'
//   :param limit => 25
// Command line:
//   spillover query most_harmed --param limit=10
OPTIONAL MATCH (dataset:Dataset)
WITH properties(dataset) AS marker
WITH CASE
       WHEN marker.writeback_run IS NULL
        AND marker.results_data_version = coalesce(marker.data_version, 0)
       THEN marker.results_run
     END AS run
WHERE run IS NOT NULL
MATCH (entry:Entry {verdict: $spillover})
WHERE entry.audit_run = run
OPTIONAL MATCH (entry)-[:LISTS]->(subject:Person)
OPTIONAL MATCH (entry)-[:LISTS]->(:Phone)<-[o:OWNS]-(owner:Person)
  WHERE (properties(o).since IS NULL OR properties(o).since <= entry.listed_at)
    AND (properties(o).until IS NULL OR entry.listed_at <= properties(o).until)
OPTIONAL MATCH (entry)-[:LISTS]->(:Record)-[:MATCHED_TO]->(matched:Person)
WITH entry, coalesce(subject, owner, matched) AS person
WHERE person IS NOT NULL
WITH entry, person
ORDER BY entry.platform_id
WITH person,
     count(entry) AS listings,
     collect(DISTINCT entry.platform_id) AS platforms,
     max(entry.contamination) AS worst_contamination
RETURN person.id AS person_id,
       person.name AS person,
       listings,
       size(platforms) AS n_platforms,
       platforms,
       worst_contamination
ORDER BY listings DESC, worst_contamination DESC, person_id
LIMIT $limit
