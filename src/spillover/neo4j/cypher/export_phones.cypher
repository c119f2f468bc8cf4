// Keyset page of phones with their known-owner periods.
MATCH (ph:Phone)
WHERE ph.number > $after
WITH ph
ORDER BY ph.number
LIMIT $limit
RETURN ph.number AS phone,
       [(o:Person)-[r:OWNS]->(ph) | [o.id, properties(r).verified, properties(r).since, properties(r).until]] AS periods
