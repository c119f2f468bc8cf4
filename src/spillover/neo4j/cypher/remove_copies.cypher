UNWIND $rows AS row
MATCH (:Entry {id: row.entry_id})-[r:COPIED_FROM]->(:Entry {id: row.copied_from})
DELETE r
