// Entries and what they list; COPIED_FROM links come in a second pass
// (ingest_copies) once every entry exists.
UNWIND $rows AS row
MATCH (pl:Platform {id: row.platform_id})
MERGE (e:Entry {id: row.entry_id})
SET e.platform_id = row.platform_id,
    e.subject_kind = row.subject_kind,
    e.subject = row.subject,
    e.listed_at = row.listed_at,
    e.stated_reason = row.stated_reason,
    e.copied_from = row.copied_from
MERGE (e)-[:ON]->(pl)
WITH e, row
OPTIONAL MATCH (person:Person {id: row.subject})
WHERE row.subject_kind = 'person'
FOREACH (_ IN CASE WHEN person IS NULL THEN [] ELSE [1] END | MERGE (e)-[:LISTS]->(person))
WITH e, row
WHERE row.subject_kind = 'phone'
MERGE (ph:Phone {number: row.subject})
MERGE (e)-[:LISTS]->(ph)
