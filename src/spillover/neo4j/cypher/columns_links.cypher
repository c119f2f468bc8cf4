// Every loan link (a LINKS relationship: guarantor, emergency contact...) as columns, in
// no particular order (Neo4jBackend.columns). collect() drops nulls: `rows` lets the
// reader check that no column lost one.
MATCH (l:Loan)-[r:LINKS]->(ph:Phone)
RETURN collect(l.id) AS loan, collect(ph.number) AS phone, collect(properties(r).role) AS role, count(*) AS rows
