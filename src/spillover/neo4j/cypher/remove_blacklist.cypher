// Delete Entry nodes by key, with whatever relationships they still have.
UNWIND $rows AS row
MATCH (n:Entry {id: row.key})
DETACH DELETE n
