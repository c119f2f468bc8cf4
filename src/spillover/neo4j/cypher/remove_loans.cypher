// Delete Loan nodes by key, with whatever relationships they still have.
UNWIND $rows AS row
MATCH (n:Loan {id: row.key})
DETACH DELETE n
