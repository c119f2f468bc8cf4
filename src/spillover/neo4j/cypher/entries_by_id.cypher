UNWIND $ids AS id
MATCH (e:Entry {id: id})
RETURN e {.*} AS entry
