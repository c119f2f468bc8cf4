CALL () {
  UNWIND $people AS id
  MATCH (p:Person {id: id})
  RETURN collect([id, p.name]) AS people
}
CALL () {
  UNWIND $platforms AS id
  MATCH (p:Platform {id: id})
  RETURN collect([id, p.name]) AS platforms
}
CALL () {
  UNWIND $records AS id
  MATCH (r:Record {id: id})
  RETURN collect([id, r.name]) AS records
}
RETURN people, platforms, records
