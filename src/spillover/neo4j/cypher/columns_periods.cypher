// Every known-owner period (an OWNS relationship) as columns, one list per field, in
// no particular order (Neo4jBackend.columns). Days are days since $epoch (1970-01-01), $missing
// when the period gives none; optional properties are read through properties(r), so
// that a database where none has them raises no "unknown property" notification.
// collect() drops nulls: every column is non-null, and `rows` lets the reader check it.
MATCH (o:Person)-[r:OWNS]->(ph:Phone)
WITH ph.number AS phone, o.id AS owner, properties(r) AS p
RETURN collect(phone) AS phone,
       collect(owner) AS owner,
       collect(coalesce(p.verified, false)) AS verified,
       collect(CASE WHEN p.since IS NULL THEN $missing ELSE duration.inDays($epoch, p.since).days END) AS since,
       collect(CASE WHEN p.until IS NULL THEN $missing ELSE duration.inDays($epoch, p.until).days END) AS until,
       count(*) AS rows
