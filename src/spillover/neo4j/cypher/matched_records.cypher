// The platform records resolved to each asked-for person (MATCHED_TO: records.person_id or
// a matches row), with the record's properties and the match's (sorted by the caller).
UNWIND $persons AS pid
MATCH (r:Record)-[m:MATCHED_TO]->(:Person {id: pid})
RETURN r {.*} AS record, pid AS person_id, properties(m) AS match
