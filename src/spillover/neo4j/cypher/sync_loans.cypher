// Keyset page of loans as stored, with every relationship the loan rows write.
MATCH (l:Loan)
WHERE l.id > $after
WITH l
ORDER BY l.id
LIMIT $limit
RETURN l.id AS key, properties(l) AS props,
       [(p)-[:BORROWED]->(l) | p.id] AS borrowers,
       [(l)-[:AT]->(pl) | pl.id] AS platforms,
       [(l)-[a:APPLIED_WITH]->(ph) | [ph.number, properties(a)]] AS applied,
       [(l)-[r:LINKS]->(ph) | [ph.number, properties(r).role]] AS links
