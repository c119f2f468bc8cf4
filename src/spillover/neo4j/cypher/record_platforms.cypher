// The platform that holds each asked-for platform record (its platform_id, the platform
// it is HELD_BY; read as the property, so that a graph without records raises no notice).
UNWIND $ids AS id
MATCH (r:Record {id: id})
WHERE r.platform_id IS NOT NULL
RETURN id, r.platform_id AS platform_id
