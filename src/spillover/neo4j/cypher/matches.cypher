// The person each asked-for platform record resolves to, with the match's properties.
UNWIND $ids AS id
MATCH (r:Record {id: id})-[m:MATCHED_TO]->(p:Person)
RETURN id, p.id AS person_id, properties(m) AS match
