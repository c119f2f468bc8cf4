// shared_phone_hubs: which phones are named as a contact (any link role) on the loans of many borrowers who never owned them
// params: $min_borrowers (how many distinct such borrowers make a hub; spillover findings uses 5 unless told)
// example: :param min_borrowers => 5
MATCH (b:Person)-[:BORROWED]->(l:Loan)-[:LINKS]->(ph:Phone)
WHERE NOT (b)-[:OWNS]->(ph)
WITH ph, b, l
ORDER BY b.id, l.id
WITH ph, collect(DISTINCT b.id) AS borrower_ids, collect(DISTINCT l.id) AS loan_ids
WHERE size(borrower_ids) >= $min_borrowers
OPTIONAL MATCH (o:Person)-[:OWNS]->(ph)
WITH ph, borrower_ids, loan_ids, o
ORDER BY o.id
RETURN
  ph.number AS phone,
  size(borrower_ids) AS borrowers,
  size(loan_ids) AS loans,
  borrower_ids,
  loan_ids,
  collect(DISTINCT o.id) AS owner_ids
ORDER BY borrowers DESC, phone
