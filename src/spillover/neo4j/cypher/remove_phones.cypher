// Delete Phone nodes by key, with whatever relationships they still have.
UNWIND $rows AS row
MATCH (n:Phone {number: row.key})
DETACH DELETE n
