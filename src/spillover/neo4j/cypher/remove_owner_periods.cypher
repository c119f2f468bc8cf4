UNWIND $rows AS row
MATCH (:Person {id: row.owner_id})-[o:OWNS {period: row.period}]->(:Phone {number: row.phone})
DELETE o
