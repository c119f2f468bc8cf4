// Delete Person nodes by key, with whatever relationships they still have.
UNWIND $rows AS row
MATCH (n:Person {id: row.key})
DETACH DELETE n
