// Every person id as one list, in no particular order (Neo4jBackend.columns: the batch kernel's
// columns are read one list per field, not one record per node).
MATCH (p:Person)
WITH p.id AS id
RETURN collect(id) AS id, count(*) AS rows
