// Delete Record nodes by key, with whatever relationships they still have.
UNWIND $rows AS row
MATCH (n:Record {id: row.key})
DETACH DELETE n
