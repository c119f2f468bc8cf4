// Upsert entries and what they list. An updated entry loses the ON and LISTS
// relationships that no longer match its row, and any audit result written back on it
// (SET e = row.props drops its properties; its TRACED_TO go here). COPIED_FROM links come in a second
// pass (ingest_copies) once every entry exists.
UNWIND $rows AS row
MATCH (pl:Platform {id: row.props.platform_id})
MERGE (e:Entry {id: row.props.id})
SET e = row.props
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
