// What each platform is (platforms.kind; missing when the folder gave none), by id;
// ids not in the graph are left out.
UNWIND $ids AS id
MATCH (p:Platform {id: id})
RETURN id, p.kind AS kind
