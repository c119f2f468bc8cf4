// Upsert loans. An updated loan loses the BORROWED, AT and APPLIED_WITH
// relationships that no longer match its row (borrower, platform or applicant
// phone corrected), so the result is what a fresh ingest writes.
UNWIND $rows AS row
MATCH (p:Person {id: row.props.borrower_id})
MATCH (pl:Platform {id: row.props.platform_id})
MERGE (l:Loan {id: row.props.id})
SET l = row.props
WITH l, p, pl, row
CALL (l, p) {
  MATCH (x)-[b:BORROWED]->(l)
  WHERE x <> p
  DELETE b
}
CALL (l, pl) {
  MATCH (l)-[a:AT]->(x)
  WHERE x <> pl
  DELETE a
}
CALL (l, row) {
  MATCH (l)-[a:APPLIED_WITH]->(x)
  WHERE row.props.applicant_phone IS NULL OR x.number <> row.props.applicant_phone
  DELETE a
}
MERGE (p)-[:BORROWED]->(l)
MERGE (l)-[:AT]->(pl)
WITH l, row
WHERE row.props.applicant_phone IS NOT NULL
MERGE (ph:Phone {number: row.props.applicant_phone})
MERGE (l)-[a:APPLIED_WITH]->(ph)
SET a = row.applied
