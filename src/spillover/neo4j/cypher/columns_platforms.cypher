// Every platform id as one list (Neo4jBackend.columns).
MATCH (p:Platform)
WITH p.id AS id
RETURN collect(id) AS id, count(*) AS rows
