// Node and relationship counts by label / type (for idempotency checks and ingest reports).
CALL () {
  MATCH (n)
  UNWIND labels(n) AS label
  RETURN label AS name, count(*) AS n
  UNION ALL
  MATCH ()-[r]->()
  RETURN type(r) AS name, count(*) AS n
}
RETURN name, n
ORDER BY name
