// Upsert entries and what they list. An updated entry loses the ON and LISTS
// relationships that no longer match its row, and any audit result written back on it
// (SET e = row.props drops its properties, but for stale_*; its TRACED_TO go here). COPIED_FROM links come in a second
// pass (ingest_copies) once every entry exists.
UNWIND $rows AS row
MATCH (pl:Platform {id: row.props.platform_id})
MERGE (e:Entry {id: row.props.id})
WITH e, pl, row, properties(e) AS was
SET e = row.props
// the last write-back's score moves to stale_* (the next write-back compares with it:
// previous_*, changed_at, kept from earlier changes); its TRACED_TO go
SET e += {stale_contamination: coalesce(was.contamination, was.stale_contamination),
          stale_verdict: coalesce(was.verdict, was.stale_verdict),
          stale_reason_codes: coalesce(was.reason_codes, was.stale_reason_codes),
          stale_audited_at: coalesce(was.audited_at, was.stale_audited_at),
          stale_audit_run: coalesce(was.audit_run, was.stale_audit_run),
          previous_contamination: was.previous_contamination,
          previous_verdict: was.previous_verdict,
          previous_reason_codes: was.previous_reason_codes,
          previous_audited_at: was.previous_audited_at, changed_at: was.changed_at}
WITH e, pl, row
CALL (e) {
  MATCH (e)-[t:TRACED_TO]->(:Loan)
  DELETE t
}
CALL (e, pl) {
  MATCH (e)-[r:ON]->(x)
  WHERE x <> pl
  DELETE r
}
CALL (e, row) {
  MATCH (e)-[r:LISTS]->(x)
  WHERE NOT (row.props.subject_kind = 'person' AND x:Person AND x.id = row.props.subject)
    AND NOT (row.props.subject_kind = 'phone' AND x:Phone AND x.number = row.props.subject)
    AND NOT (row.props.subject_kind = 'record' AND x:Record AND x.id = row.props.subject)
  DELETE r
}
MERGE (e)-[:ON]->(pl)
WITH e, row
OPTIONAL MATCH (person:Person {id: row.props.subject})
WHERE row.props.subject_kind = 'person'
FOREACH (_ IN CASE WHEN person IS NULL THEN [] ELSE [1] END | MERGE (e)-[:LISTS]->(person))
WITH e, row
OPTIONAL MATCH (record:Record {id: row.props.subject})
WHERE row.props.subject_kind = 'record'
FOREACH (_ IN CASE WHEN record IS NULL THEN [] ELSE [1] END | MERGE (e)-[:LISTS]->(record))
WITH e, row
WHERE row.props.subject_kind = 'phone'
MERGE (ph:Phone {number: row.props.subject})
MERGE (e)-[:LISTS]->(ph)
