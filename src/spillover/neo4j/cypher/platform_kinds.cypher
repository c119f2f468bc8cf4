// What each platform is (platforms.kind; missing when the folder gave none), by id;
// ids not in the graph are left out. properties(p): no "unknown property" notification
// on a database where no platform has a kind.
UNWIND $ids AS id
MATCH (p:Platform {id: id})
RETURN id, properties(p).kind AS kind
