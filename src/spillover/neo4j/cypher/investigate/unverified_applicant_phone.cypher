// unverified_applicant_phone: which phones were given as a borrower's own number while another person owned them, without an SMS check (the Xu Yan pattern), and who owned them (the person who bears the consequences)
// params: none
// example: run as it is; spillover findings reports it as APPLICANT_PHONE_OF_ANOTHER
MATCH (b:Person)-[:BORROWED]->(l:Loan)-[:APPLIED_WITH]->(ph:Phone)
WHERE NOT coalesce(properties(l).phone_verified, false)
  AND NOT EXISTS {
    MATCH (b)-[r:OWNS]->(ph)
    WITH properties(r) AS period
    WHERE (period.since IS NULL OR period.since <= l.applied_at)
      AND (period.until IS NULL OR l.applied_at <= period.until)
  }
MATCH (o:Person)-[r:OWNS]->(ph)
WITH b, l, ph, o, properties(r) AS period
WHERE (period.since IS NULL OR period.since <= l.applied_at)
  AND (period.until IS NULL OR l.applied_at <= period.until)
RETURN DISTINCT
  ph.number AS phone,
  o.id AS owner_id,
  l.id AS loan_id,
  b.id AS borrower_id,
  l.platform_id AS platform_id,
  l.applied_at AS applied_at,
  l.status AS status
ORDER BY phone, owner_id, loan_id
