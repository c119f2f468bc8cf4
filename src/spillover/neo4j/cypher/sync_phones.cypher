// Keyset page of phones as stored, with their OWNS periods. properties(r) rather
// than r.until: a property no row ever had raises no "unknown property" notice.
MATCH (ph:Phone)
WHERE ph.number > $after
WITH ph
ORDER BY ph.number
LIMIT $limit
RETURN ph.number AS key, properties(ph) AS props,
       [(o)-[r:OWNS]->(ph) | [o.id, properties(r)]] AS owners
