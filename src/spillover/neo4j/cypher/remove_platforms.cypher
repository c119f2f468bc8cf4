// Delete Platform nodes by key, with whatever relationships they still have.
UNWIND $rows AS row
MATCH (n:Platform {id: row.key})
DETACH DELETE n
