// copies_after_repaid: which copied listings were made after every loan tying the first listing's subject to that listing's platform had been repaid
// params: $repaid (the status of a repaid loan: 'repaid')
// example: :param repaid => 'repaid'
MATCH (e:Entry)-[:COPIED_FROM]->+(root:Entry)
WHERE NOT (root)-[:COPIED_FROM]->()
MATCH (root)-[:LISTS]->(s)
CALL (root, s) {
  MATCH (s:Person)-[:BORROWED]->(l:Loan)
  WHERE l.platform_id = root.platform_id
  RETURN l
  UNION
  MATCH (s:Person)-[:OWNS]->(:Phone)<-[:APPLIED_WITH|LINKS]-(l:Loan)
  WHERE l.platform_id = root.platform_id
  RETURN l
  UNION
  MATCH (s:Phone)<-[:APPLIED_WITH|LINKS]-(l:Loan)
  WHERE l.platform_id = root.platform_id
  RETURN l
}
WITH e, root, l
ORDER BY l.id
WITH e, root, collect(DISTINCT l) AS loans
WHERE size(loans) > 0
  AND all(l IN loans WHERE l.status = $repaid AND coalesce(l.status_at, l.applied_at) <= e.listed_at)
RETURN e.id AS entry_id, root.id AS root_id, root.platform_id AS platform_id, [l IN loans | l.id] AS loan_ids
ORDER BY entry_id
