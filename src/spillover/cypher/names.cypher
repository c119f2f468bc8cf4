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
RETURN people, platforms
