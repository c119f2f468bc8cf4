UNWIND $rows AS row
MERGE (p:Platform {id: row.platform_id})
SET p.name = row.name, p.kind = row.kind
