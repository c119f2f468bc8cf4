// Keyset page of person ids (for the batch kernel's columns).
MATCH (p:Person)
WHERE p.id > $after
RETURN p.id AS id
ORDER BY id
LIMIT $limit
