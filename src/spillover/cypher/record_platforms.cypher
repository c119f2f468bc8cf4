// The platform that holds each asked-for platform record (HELD_BY).
UNWIND $ids AS id
MATCH (r:Record {id: id})-[:HELD_BY]->(p:Platform)
RETURN id, p.id AS platform_id
