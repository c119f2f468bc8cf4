// Keyset page of people as stored (ingest compares them with the folder).
MATCH (p:Person)
WHERE p.id > $after
WITH p
ORDER BY p.id
LIMIT $limit
RETURN p.id AS key, properties(p) AS props
