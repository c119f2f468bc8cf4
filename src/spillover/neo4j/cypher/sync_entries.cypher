// Keyset page of entries as stored, with every relationship the blacklist rows write.
MATCH (e:Entry)
WHERE e.id > $after
WITH e
ORDER BY e.id
LIMIT $limit
RETURN e.id AS key, properties(e) AS props,
       [(e)-[:ON]->(pl) | pl.id] AS platforms,
       [(e)-[:LISTS]->(x) | CASE WHEN x:Person THEN ['person', x.id] WHEN x:Record THEN ['record', x.id] ELSE ['phone', x.number] END] AS lists,
       [(e)-[:COPIED_FROM]->(s) | s.id] AS copies
