// listed_only_unverified: which listed people have no overdue or defaulted loan of their own and are tied to other people's overdue or defaulted loans only through ties they did not verify (unverified ownership, unverified applicant use, address-book uploads)
// params: $statuses (loan statuses that start a spread), $applicant and $applied_with (the applicant role and its relationship type), $unverified_roles (roles that are never verified), $unchecked_roles (roles unverified without an SMS check), $owner_unverified (whether an unverified ownership counts); spillover findings passes them from spillover.rules and the policy
// example: :params {statuses: ['defaulted', 'overdue'], applicant: 'applicant', applied_with: 'APPLIED_WITH', unverified_roles: ['address_book'], unchecked_roles: ['applicant'], owner_unverified: true}
MATCH (e:Entry)-[:LISTS]->(s)
OPTIONAL MATCH (s)<-[r:OWNS]-(owner:Person)
WHERE (properties(r).since IS NULL OR properties(r).since <= e.listed_at)
  AND (properties(r).until IS NULL OR e.listed_at <= properties(r).until)
WITH e, CASE WHEN s:Person THEN s ELSE owner END AS p
WHERE p IS NOT NULL
WITH p, e
ORDER BY e.id
WITH p, collect(DISTINCT e.id) AS entry_ids
WHERE NOT EXISTS {
  MATCH (p)-[:BORROWED]->(own:Loan)
  WHERE own.status IN $statuses
}
MATCH (p)-[o:OWNS]->(:Phone)<-[u:APPLIED_WITH|LINKS]-(l:Loan)
WHERE l.status IN $statuses
  AND properties(l).borrower_id <> p.id
  AND (properties(o).since IS NULL OR properties(o).since <= l.applied_at)
  AND (properties(o).until IS NULL OR l.applied_at <= properties(o).until)
WITH p, entry_ids, l, o, CASE type(u) WHEN $applied_with THEN $applicant ELSE u.role END AS role
WITH p, entry_ids, l,
  ($owner_unverified AND NOT coalesce(properties(o).verified, false))
  OR role IN $unverified_roles
  OR (role IN $unchecked_roles AND NOT coalesce(properties(l).phone_verified, false)) AS unverified
ORDER BY l.id
WITH p, entry_ids, collect(unverified) AS flags, collect(DISTINCT l.id) AS loan_ids
WHERE all(f IN flags WHERE f)
RETURN p.id AS person_id, entry_ids, loan_ids
ORDER BY person_id
