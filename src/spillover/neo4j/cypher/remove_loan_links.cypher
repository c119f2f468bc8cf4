UNWIND $rows AS row
MATCH (:Loan {id: row.loan_id})-[r:LINKS {role: row.role}]->(:Phone {number: row.phone})
DELETE r
