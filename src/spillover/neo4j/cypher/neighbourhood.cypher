// $platforms: platform ids whose names to give as well. Dates come as days since $epoch
// (1970-01-01; null when not given): the driver decodes an integer much faster than a date.
// $applicant and $applied_with: the applicant role and its stored type (spillover.rules.ROLES).
// Everything a search of up to three layers needs, in one round trip
// (GraphBackend.neighbourhood): the people within two person-to-person ties of the
// start people (a tie: owns a phone named on a loan of the other), the people within
// one tie of the borrowers of loans naming a start phone; their own loans; and for
// every phone they ever owned and every start phone, the loans naming it and its
// owner periods. Ownership days are not checked here (a superset): the core checks them.
// Optional properties are read through properties(r): a property that no row has ever
// had would otherwise raise an "unknown property" notification.
CALL () {
  UNWIND $persons AS pid
  MATCH (p0:Person {id: pid})
  MATCH (p0) ((:Person)-[:OWNS]->(:Phone)<-[:APPLIED_WITH|LINKS]-(:Loan)<-[:BORROWED]-(:Person)){0,2} (pn:Person)
  RETURN collect(DISTINCT pn) AS from_people
}
CALL () {
  UNWIND $phones AS number
  MATCH (:Phone {number: number})<-[:APPLIED_WITH|LINKS]-(:Loan)<-[:BORROWED]-(b:Person)
  MATCH (b) ((:Person)-[:OWNS]->(:Phone)<-[:APPLIED_WITH|LINKS]-(:Loan)<-[:BORROWED]-(:Person)){0,1} (pn:Person)
  RETURN collect(DISTINCT pn) AS from_phones
}
WITH from_people + [p IN from_phones WHERE NOT p IN from_people] AS people
CALL (people) {
  UNWIND people AS p
  MATCH (p)-[:BORROWED]->(l:Loan)
  RETURN collect(l {.*, applied_at: duration.inDays($epoch, l.applied_at).days, status_at: CASE WHEN l.status_at IS NULL THEN null ELSE duration.inDays($epoch, l.status_at).days END}) AS own_loans
}
CALL (people) {
  UNWIND people AS p
  MATCH (p)-[:OWNS]->(ph:Phone)
  RETURN collect(DISTINCT ph.number) AS owned
}
WITH people, own_loans, owned + [n IN $phones WHERE NOT n IN owned] AS numbers
CALL (numbers) {
  UNWIND numbers AS number
  MATCH (ph:Phone {number: number})<-[r:APPLIED_WITH|LINKS]-(l:Loan)
  RETURN collect({
    phone: ph.number,
    role: CASE type(r) WHEN $applied_with THEN $applicant ELSE properties(r).role END,
    loan: l {.*, applied_at: duration.inDays($epoch, l.applied_at).days, status_at: CASE WHEN l.status_at IS NULL THEN null ELSE duration.inDays($epoch, l.status_at).days END}
  }) AS uses
}
CALL (numbers) {
  UNWIND numbers AS number
  MATCH (o:Person)-[r:OWNS]->(ph:Phone {number: number})
  WITH ph, o, properties(r) AS period
  RETURN collect({
    phone: ph.number, owner_id: o.id,
    since: CASE WHEN period.since IS NULL THEN null ELSE duration.inDays($epoch, period.since).days END,
    until: CASE WHEN period.until IS NULL THEN null ELSE duration.inDays($epoch, period.until).days END,
    verified: period.verified
  }) AS periods
}
// The names an explanation of the search shows (GraphBackend.neighbourhood): the people
// covered, the borrowers of the loans naming the phones (some are not covered), the
// platforms of all the loans here and $platforms (the listing's routes), so that naming
// the paths costs no second round trip.
WITH people, own_loans, uses, periods, [p IN people | p.id] AS covered
CALL (uses, covered) {
  UNWIND uses AS u
  WITH DISTINCT u.loan.borrower_id AS id
  WHERE NOT id IN covered
  MATCH (b:Person {id: id})
  RETURN collect([id, b.name]) AS borrowers
}
CALL (own_loans, uses) {
  UNWIND [l IN own_loans | l.platform_id] + [u IN uses | u.loan.platform_id] + $platforms AS id
  WITH DISTINCT id
  MATCH (pl:Platform {id: id})
  RETURN collect([id, pl.name]) AS platforms
}
RETURN covered, own_loans, uses, periods,
  [p IN people | [p.id, p.name]] + borrowers AS people_names, platforms AS platform_names
