// $applicant and $applied_with: the applicant role and its stored type (spillover.rules.ROLES).
// Graph facts one hop around a frontier (GraphBackend.expand):
//   own_loans: loans borrowed by $persons, applied on or before $until
//   uses:      loans applied on or before $until that name one of $phones, or a
//              phone any of $persons ever owned (as applicant phone or by a link)
//   periods:   every known-owner period of all those phones
CALL () {
  UNWIND $persons AS pid
  MATCH (:Person {id: pid})-[:BORROWED]->(l:Loan)
  WHERE l.applied_at <= $until
  RETURN collect(l {.*}) AS own_loans
}
CALL () {
  UNWIND $persons AS pid
  MATCH (:Person {id: pid})-[:OWNS]->(ph:Phone)
  RETURN collect(DISTINCT ph.number) AS owned
}
WITH own_loans, owned + $phones AS numbers
CALL (numbers) {
  UNWIND numbers AS number
  MATCH (ph:Phone {number: number})
  WITH DISTINCT ph
  MATCH (l:Loan)-[r:APPLIED_WITH|LINKS]->(ph)
  WHERE l.applied_at <= $until
  RETURN collect({
    phone: ph.number,
    role: CASE type(r) WHEN $applied_with THEN $applicant ELSE properties(r).role END,
    loan: l {.*}
  }) AS uses
}
CALL (numbers) {
  UNWIND numbers AS number
  MATCH (o:Person)-[r:OWNS]->(ph:Phone {number: number})
  WITH DISTINCT ph, o, r
  WITH ph, o, properties(r) AS period
  RETURN collect({
    phone: ph.number, owner_id: o.id,
    since: period.since, until: period.until, verified: period.verified
  }) AS periods
}
RETURN own_loans, uses, periods
