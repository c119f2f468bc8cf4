// $applicant and $applied_with: the applicant role and its stored type (spillover.rules.ROLES).
// What a graph view needs beyond expand (GraphBackend.surroundings):
//   uses:    every phone named on the loans $loans (ids), as applicant's number or by a link
//   entries: every blacklist entry listing one of $persons (ids) or $phones (numbers)
CALL () {
  UNWIND $loans AS lid
  MATCH (l:Loan {id: lid})-[r:APPLIED_WITH|LINKS]->(ph:Phone)
  RETURN collect({
    phone: ph.number,
    role: CASE type(r) WHEN $applied_with THEN $applicant ELSE r.role END,
    loan: l {.*}
  }) AS uses
}
CALL () {
  UNWIND $subjects AS s
  MATCH (e:Entry)
  WHERE e.subject_kind = s.kind AND e.subject = s.id
  RETURN collect(e {.*}) AS entries
}
RETURN uses, entries
