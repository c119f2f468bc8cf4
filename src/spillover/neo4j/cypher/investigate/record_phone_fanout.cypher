// record_phone_fanout: phone numbers on the platform records of many identities (an identity: a record's ID number, else its name)
// params: $min_identities (how many distinct identities make a fan-out; spillover findings uses 3 unless told)
// example: :param min_identities => 3
MATCH (r:Record)
WHERE properties(r).phone IS NOT NULL
WITH r
ORDER BY r.id
WITH properties(r).phone AS phone, collect(r.id) AS record_ids,
     collect(DISTINCT coalesce(properties(r).id_number, properties(r).name)) AS identities
WHERE size(identities) >= $min_identities
RETURN phone, record_ids, identities
ORDER BY phone
