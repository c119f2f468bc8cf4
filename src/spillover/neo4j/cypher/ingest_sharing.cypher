UNWIND $rows AS row
MATCH (a:Platform {id: row.from_platform})
MATCH (b:Platform {id: row.to_platform})
MERGE (a)-[s:SHARES_WITH]->(b)
SET s = row.props
