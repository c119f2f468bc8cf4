// Upsert platforms: every property replaced by the row's (a property missing from
// row.props is removed), so an update leaves exactly what a fresh ingest writes.
UNWIND $rows AS row
MERGE (p:Platform {id: row.props.id})
SET p = row.props
