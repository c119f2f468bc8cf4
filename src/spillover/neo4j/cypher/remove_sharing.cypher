UNWIND $rows AS row
MATCH (:Platform {id: row.from_platform})-[s:SHARES_WITH]->(:Platform {id: row.to_platform})
DELETE s
