// copies_after_repaid: which copied listings were made after every loan tying the first listing's subject to that listing's platform had been repaid
// params: $repaid (the status of a repaid loan: 'repaid')
// example: :param repaid => 'repaid'
// (each first listing's loans are found once, then its copies, each copy once: a long
// copy chain costs its length, not its length squared)
MATCH (root:Entry)-[:LISTS]->(s)
WHERE NOT (root)-[:COPIED_FROM]->() AND ()-[:COPIED_FROM]->(root)
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
WITH root, l
ORDER BY l.id
WITH root, collect(DISTINCT l) AS loans
WHERE size(loans) > 0 AND all(l IN loans WHERE l.status = $repaid)
WITH root, loans, [l IN loans | coalesce(properties(l).status_at, l.applied_at)] AS known
MATCH (e:Entry)-[:COPIED_FROM*]->(root)
WITH DISTINCT e, root, loans, known
WHERE all(day IN known WHERE day <= e.listed_at)
RETURN e.id AS entry_id, root.id AS root_id, root.platform_id AS platform_id, [l IN loans | l.id] AS loan_ids
ORDER BY entry_id
