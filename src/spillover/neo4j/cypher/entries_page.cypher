// Keyset pagination over entries in id order (uses the entry_id constraint's index).
MATCH (e:Entry)
WHERE e.id > $after
RETURN e {.*} AS entry
ORDER BY e.id
LIMIT $limit
