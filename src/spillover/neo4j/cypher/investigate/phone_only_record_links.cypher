// phone_only_record_links: pairs of platform records on different platforms that share a phone number but neither a name nor an ID number (the Xu Yan pattern: a platform matching on the phone alone takes one person's record for another's)
// params: none
// example: (no parameters) on examples/jiang_records: Jiang's number, held by QuickCash's and Tianyan's records of Xu Yan and Qiantang Bank's record of Jiang
MATCH (a:Record)
WHERE properties(a).phone IS NOT NULL
MATCH (b:Record {phone: properties(a).phone})
WHERE a.id < b.id
  AND a.platform_id <> b.platform_id
  AND NOT coalesce(properties(a).name = properties(b).name, false)
  AND NOT coalesce(properties(a).id_number = properties(b).id_number, false)
RETURN properties(a).phone AS phone, a.id AS record_a, b.id AS record_b,
       a.platform_id AS platform_a, b.platform_id AS platform_b
ORDER BY phone, record_a, record_b
