// Keyset page of platforms as stored (ingest compares them with the folder).
MATCH (p:Platform)
WHERE p.id > $after
WITH p
ORDER BY p.id
LIMIT $limit
RETURN p.id AS key, properties(p) AS props
