// trace_entry: the chains that explain one blacklist entry, drawn over the graph's own nodes and relationships
//
// What `spillover explain ENTRY_ID` prints, as Neo4j paths: one row per step of every
// explanation path (rank 1 is the best), each a one-relationship path over the stored
// Person, Phone, Loan, Platform, Entry and Record nodes, so that Neo4j Browser draws the
// chain (Jiang -> phone -> Xu Yan's loan -> lender -> broker -> bank). A platform
// record's match is its MATCHED_TO; the step from a record to the loan that names its
// borrower by it is two relationships, record -MATCHED_TO- person -BORROWED-> loan (the
// loan's BORROWED is stored from the record's person).
// Needs `spillover audit --write-back`: its TRACED_TO relationships pick the origin loans
// and hold the route each path walks (labels/keys of its nodes; per step the stored
// relationship, link role and owner period); this query matches those nodes and
// relationships in the graph. Run the write-back again after an ingest.
// Reads the results of the last complete `spillover audit --write-back` only, and only
// while no ingest has changed the data since that run read the graph (the dataset
// marker says so): otherwise it returns no rows, `spillover query` refuses with the
// reason, and the saved query results_status shows it (docs/investigating.md#stale-results).
// @needs: write-back
//
// @param entry_id: string. The blacklist entry, e.g. E-WL-J.
//
// In Neo4j Browser:
//   :param entry_id => 'E-WL-J'
// Command line:
//   spillover query trace_entry --param entry_id=E-WL-J
OPTIONAL MATCH (dataset:Dataset)
WITH properties(dataset) AS marker
WITH CASE
       WHEN marker.writeback_run IS NULL
        AND marker.results_data_version = coalesce(marker.data_version, 0)
       THEN marker.results_run
     END AS run
WHERE run IS NOT NULL
MATCH (entry:Entry {id: $entry_id})-[t:TRACED_TO]->(origin:Loan)
WHERE entry.audit_run = run
UNWIND range(0, size(t.steps) - 1) AS i
CALL (t, i) {
  WITH t.labels[i] AS label, t.keys[i] AS key
  CALL (label, key) {
    MATCH (n:Person {id: key}) WHERE label = 'Person' RETURN n
    UNION ALL
    MATCH (n:Phone {number: key}) WHERE label = 'Phone' RETURN n
    UNION ALL
    MATCH (n:Loan {id: key}) WHERE label = 'Loan' RETURN n
    UNION ALL
    MATCH (n:Platform {id: key}) WHERE label = 'Platform' RETURN n
    UNION ALL
    MATCH (n:Entry {id: key}) WHERE label = 'Entry' RETURN n
    UNION ALL
    MATCH (n:Record {id: key}) WHERE label = 'Record' RETURN n
  }
  RETURN n AS a
}
CALL (t, i) {
  WITH t.labels[i + 1] AS label, t.keys[i + 1] AS key
  CALL (label, key) {
    MATCH (n:Person {id: key}) WHERE label = 'Person' RETURN n
    UNION ALL
    MATCH (n:Phone {number: key}) WHERE label = 'Phone' RETURN n
    UNION ALL
    MATCH (n:Loan {id: key}) WHERE label = 'Loan' RETURN n
    UNION ALL
    MATCH (n:Platform {id: key}) WHERE label = 'Platform' RETURN n
    UNION ALL
    MATCH (n:Entry {id: key}) WHERE label = 'Entry' RETURN n
    UNION ALL
    MATCH (n:Record {id: key}) WHERE label = 'Record' RETURN n
  }
  RETURN n AS b
}
CALL (t, i, a, b) {
  MATCH step = (a)-[r]-(b)
  WHERE type(r) = t.walks[i]
    AND coalesce(properties(r).role, '') = t.roles[i]
    AND coalesce(properties(r).period, '') = t.periods[i]
  RETURN step
  UNION ALL
  // a loan that names its borrower by a platform record: BORROWED is stored from the
  // record's person, so the step record -> loan is drawn record -> person -> loan
  MATCH step = (a)-[:MATCHED_TO]-(:Person)-[:BORROWED]-(b)
  WHERE t.walks[i] = 'BORROWED'
    AND ((a:Record AND properties(b).borrower_record = a.id)
         OR (b:Record AND properties(a).borrower_record = b.id))
  RETURN step
}
RETURN t.rank AS rank,
       t.responsibility AS responsibility,
       t.hops AS hops,
       origin.id AS origin_loan,
       i + 1 AS step,
       t.steps[i] AS rel,
       t.keys[i] AS source,
       t.keys[i + 1] AS target,
       step AS path
ORDER BY rank, step
