// Every blacklist entry as columns, one list per field (Neo4jBackend.columns):
// only what the batch kernel reads. Days since $epoch (1970-01-01); optional properties
// through properties(e). collect() drops nulls: `rows` lets the reader check every column.
MATCH (e:Entry)
WITH e, properties(e) AS p
RETURN collect(p.id) AS id,
       collect(p.platform_id) AS platform,
       collect(p.subject_kind) AS subject_kind,
       collect(p.subject) AS subject,
       collect(duration.inDays($epoch, p.listed_at).days) AS listed,
       collect(coalesce(p.copied_from, '')) AS copied_from,
       count(*) AS rows
