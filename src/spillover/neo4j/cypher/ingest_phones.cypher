// Phone nodes: every number the folder names (phones, applicant phones, links, phone subjects).
UNWIND $rows AS row
MERGE (ph:Phone {number: row.props.number})
SET ph = row.props
