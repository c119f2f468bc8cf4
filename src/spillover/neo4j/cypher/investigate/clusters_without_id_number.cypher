// clusters_without_id_number: people whose resolved platform records (MATCHED_TO, from records.person_id or a match) number two or more and never share an ID number (none carries one twice: they are missing or differ)
// params: none
// example: (no parameters) on examples/jiang_records: jiang (his bank record has his ID number, the broker's record matched to him by phone has none)
MATCH (r:Record)-[m:MATCHED_TO]->(p:Person)
WITH p, r, m
ORDER BY r.id
WITH p, collect(r.id) AS record_ids, collect(properties(r).id_number) AS id_numbers,
     collect(DISTINCT properties(r).id_number) AS distinct_ids, collect(DISTINCT m.matched_by) AS matched_by
WHERE size(record_ids) >= 2 AND size(id_numbers) = size(distinct_ids)
RETURN p.id AS person_id, record_ids, matched_by
ORDER BY person_id
