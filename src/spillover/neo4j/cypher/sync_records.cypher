// Keyset page of platform records as stored, with every relationship the records rows write
// (HELD_BY is the one relationship from a record to a platform: it is not named, so that
// a database that never held a record raises no notification).
MATCH (r:Record)
WHERE r.id > $after
WITH r
ORDER BY r.id
LIMIT $limit
RETURN r.id AS key, properties(r) AS props,
       [(r)-->(pl:Platform) | pl.id] AS platforms,
       [(r)-[m:MATCHED_TO]->(p) | [p.id, properties(m)]] AS matches
