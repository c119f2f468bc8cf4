UNWIND $rows AS row
MATCH (l:Loan {id: row.loan_id})
MERGE (ph:Phone {number: row.phone})
MERGE (l)-[:LINKS {role: row.role}]->(ph)
