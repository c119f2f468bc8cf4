// Nodes per graph label, from the count store (instant; the progress totals of a read-back).
CALL () { MATCH (n:Platform) RETURN count(n) AS Platform }
CALL () { MATCH (n:Person) RETURN count(n) AS Person }
CALL () { MATCH (n:Phone) RETURN count(n) AS Phone }
CALL () { MATCH (n:Loan) RETURN count(n) AS Loan }
CALL () { MATCH (n:Entry) RETURN count(n) AS Entry }
CALL () { MATCH (n:Record) RETURN count(n) AS Record }
RETURN Platform, Person, Phone, Loan, Entry, Record
