UNWIND $rows AS row
MERGE (p:Person {id: row.props.id})
SET p = row.props
