UNWIND $rows AS row
MATCH (e:Entry {id: row.entry_id})
MATCH (src:Entry {id: row.copied_from})
MERGE (e)-[:COPIED_FROM]->(src)
