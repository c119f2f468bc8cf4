// One OWNS relationship per known-owner period, keyed by (owner, phone, period);
// `period` is the `since` date as text ("" when open). A period with an unknown
// owner has no OWNS: on such days no period covers the phone, which is what the
// core concludes from an unknown owner.
UNWIND $rows AS row
MATCH (p:Person {id: row.owner_id})
MERGE (ph:Phone {number: row.phone})
MERGE (p)-[o:OWNS {period: row.props.period}]->(ph)
SET o = row.props
