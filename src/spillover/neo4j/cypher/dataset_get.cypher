// The dataset marker (at most one), and whether any graph node exists besides it.
OPTIONAL MATCH (d:Dataset)
WITH d LIMIT 1
CALL () {
  OPTIONAL MATCH (n)
  WHERE NOT n:Dataset
  WITH n LIMIT 1
  RETURN n IS NOT NULL AS has_data
}
RETURN properties(d) AS marker, has_data
