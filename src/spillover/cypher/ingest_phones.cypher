// One row per owner period. A period with an unknown owner only creates the
// Phone node: on such days the phone has no known owner, which is what the core
// concludes when no OWNS period covers a day.
UNWIND $rows AS row
MERGE (ph:Phone {number: row.phone})
WITH ph, row
WHERE row.owner_id IS NOT NULL
MATCH (p:Person {id: row.owner_id})
MERGE (p)-[o:OWNS {period: row.period}]->(ph)
SET o.since = row.since, o.until = row.until, o.verified = row.verified
