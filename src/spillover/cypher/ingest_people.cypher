UNWIND $rows AS row
MERGE (p:Person {id: row.person_id})
SET p.name = row.name, p.id_number = row.id_number, p.city = row.city
