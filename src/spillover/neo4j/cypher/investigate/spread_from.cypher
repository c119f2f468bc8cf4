// spread_from: every entry and person whose listing traces back to the defaults of one person (or one loan)
//
// A defaulter's blast radius: the entries whose explanation paths (TRACED_TO, all ranks;
// rank 1 is the path that sets the score) end at a loan of $from (a person id: their
// loans; or a loan id), with the person listed (the subject, the owner of the listed
// phone on the listing day, or the person a listed platform record is matched to), the loans deep (hops), the path's responsibility and the
// entry's contamination and verdict. Entries that list the defaulter themself (their
// own conduct) are left out.
// Needs `spillover audit --write-back`.
// Reads the results of the last complete `spillover audit --write-back` only, and only
// while no ingest has changed the data since that run read the graph (the dataset
// marker says so): otherwise it returns no rows, `spillover query` refuses with the
// reason, and the saved query results_status shows it (docs/investigating.md#stale-results).
// @needs: write-back
//
// @param from: string. A person id (e.g. xu_yan) or a loan id (e.g. XY-AX-1).
//
// In Neo4j Browser:
//   :param from => 'xu_yan'
// Command line:
//   spillover query spread_from --param from=xu_yan
OPTIONAL MATCH (dataset:Dataset)
WITH properties(dataset) AS marker
WITH CASE
       WHEN marker.writeback_run IS NULL
        AND marker.results_data_version = coalesce(marker.data_version, 0)
       THEN marker.results_run
     END AS run
WHERE run IS NOT NULL
CALL () {
  MATCH (:Person {id: $from})-[:BORROWED]->(origin:Loan) RETURN origin
  UNION
  MATCH (origin:Loan {id: $from}) RETURN origin
}
MATCH (entry:Entry)-[t:TRACED_TO]->(origin)
WHERE entry.audit_run = run
OPTIONAL MATCH (entry)-[:LISTS]->(subject:Person)
OPTIONAL MATCH (entry)-[:LISTS]->(:Phone)<-[o:OWNS]-(owner:Person)
  WHERE (properties(o).since IS NULL OR properties(o).since <= entry.listed_at)
    AND (properties(o).until IS NULL OR entry.listed_at <= properties(o).until)
OPTIONAL MATCH (entry)-[:LISTS]->(:Record)-[:MATCHED_TO]->(matched:Person)
WITH entry, t, origin, coalesce(subject, owner, matched) AS person
WHERE person IS NULL OR person.id <> properties(origin).borrower_id
RETURN entry.id AS entry_id,
       entry.platform_id AS platform_id,
       person.id AS person_id,
       person.name AS person,
       entry.subject_kind AS subject_kind,
       entry.subject AS subject,
       origin.id AS origin_loan,
       properties(origin).borrower_id AS origin_borrower,
       t.rank AS rank,
       t.hops AS hops,
       t.responsibility AS responsibility,
       entry.contamination AS contamination,
       entry.verdict AS verdict
ORDER BY entry_id, rank
