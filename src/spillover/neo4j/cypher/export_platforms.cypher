MATCH (p:Platform)
RETURN p.id AS id
ORDER BY id
