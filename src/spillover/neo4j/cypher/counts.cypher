// Node and relationship counts by label / type (for idempotency checks and ingest
// reports), from Neo4j's count store: constant time, where counting by MATCH reads
// every node and relationship (tens of seconds at millions). A node with two labels
// counts under each, as labels(n) would; labels and types with no element left out.
CALL db.stats.retrieve('GRAPH COUNTS') YIELD data
CALL (data) {
  UNWIND data.nodes AS c
  WITH c
  WHERE c.label IS NOT NULL AND c.count > 0
  RETURN c.label AS name, c.count AS n
  UNION ALL
  UNWIND data.relationships AS c
  WITH c
  WHERE c.relationshipType IS NOT NULL AND c.startLabel IS NULL AND c.endLabel IS NULL
    AND c.count > 0
  RETURN c.relationshipType AS name, c.count AS n
}
RETURN name, n
ORDER BY name
