// Keyset page of platform records, each with the person it resolves to (if any) and the match.
MATCH (r:Record)
WHERE r.id > $after
WITH r
ORDER BY r.id
LIMIT $limit
OPTIONAL MATCH (r)-[m:MATCHED_TO]->(p:Person)
RETURN r {.*} AS record, p.id AS person_id, properties(m) AS match
