// Keyset page of loans with their links.
MATCH (l:Loan)
WHERE l.id > $after
WITH l
ORDER BY l.id
LIMIT $limit
RETURN l {.*} AS loan, [(l)-[r:LINKS]->(ph:Phone) | [ph.number, r.role]] AS links
