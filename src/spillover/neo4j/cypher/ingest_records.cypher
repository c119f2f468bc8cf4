// Upsert platform records (docs/graph-model.md): the Record node, the platform that holds
// it (HELD_BY) and the person it resolves to (MATCHED_TO, with the match's properties:
// matched_by, match_probability, matched_with, match_weight, waterfall as JSON text).
// An updated record loses the HELD_BY and MATCHED_TO relationships that no longer match
// its row, so the result is what a fresh ingest writes.
UNWIND $rows AS row
MATCH (pl:Platform {id: row.props.platform_id})
MERGE (r:Record {id: row.props.id})
SET r = row.props
WITH r, pl, row
CALL (r, pl) {
  MATCH (r)-[h:HELD_BY]->(x)
  WHERE x <> pl
  DELETE h
}
CALL (r, row) {
  MATCH (r)-[m:MATCHED_TO]->(x)
  WHERE row.person_id IS NULL OR x.id <> row.person_id
  DELETE m
}
MERGE (r)-[:HELD_BY]->(pl)
WITH r, row
WHERE row.person_id IS NOT NULL
MATCH (p:Person {id: row.person_id})
MERGE (r)-[m:MATCHED_TO]->(p)
SET m = row.match
