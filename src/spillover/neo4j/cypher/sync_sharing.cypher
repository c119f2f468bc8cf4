MATCH (a:Platform)-[s:SHARES_WITH]->(b:Platform)
RETURN a.id AS from_platform, b.id AS to_platform, properties(s) AS props
