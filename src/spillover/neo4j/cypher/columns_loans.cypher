// Every loan as columns, one list per field (Neo4jBackend.columns): only
// what the batch kernel reads. Days are days since $epoch (1970-01-01), $missing when not
// given; optional properties through properties(l) (no "unknown property" notification).
// collect() drops nulls: every column is non-null, and `rows` lets the reader check it.
MATCH (l:Loan)
WITH l, properties(l) AS p
RETURN collect(p.id) AS id,
       collect(p.platform_id) AS platform,
       collect(p.borrower_id) AS borrower,
       collect(duration.inDays($epoch, p.applied_at).days) AS applied,
       collect(CASE WHEN p.status_at IS NULL THEN $missing ELSE duration.inDays($epoch, p.status_at).days END) AS status_at,
       collect(p.status) AS status,
       collect(coalesce(p.applicant_phone, '')) AS applicant_phone,
       collect(coalesce(p.phone_verified, false)) AS phone_verified,
       collect(coalesce(p.borrower_record, '')) AS borrower_record,
       count(*) AS rows
