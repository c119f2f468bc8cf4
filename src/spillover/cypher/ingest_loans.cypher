UNWIND $rows AS row
MATCH (p:Person {id: row.borrower_id})
MATCH (pl:Platform {id: row.platform_id})
MERGE (l:Loan {id: row.loan_id})
SET l.platform_id = row.platform_id,
    l.borrower_id = row.borrower_id,
    l.applied_at = row.applied_at,
    l.status = row.status,
    l.status_at = row.status_at,
    l.amount = row.amount,
    l.applicant_phone = row.applicant_phone,
    l.phone_verified = row.phone_verified
MERGE (p)-[:BORROWED]->(l)
MERGE (l)-[:AT]->(pl)
WITH l, row
WHERE row.applicant_phone IS NOT NULL
MERGE (ph:Phone {number: row.applicant_phone})
MERGE (l)-[a:APPLIED_WITH]->(ph)
SET a.verified = row.phone_verified
