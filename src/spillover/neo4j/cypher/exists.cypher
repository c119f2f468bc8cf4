RETURN CASE $kind
  WHEN 'person' THEN EXISTS { MATCH (:Person {id: $id}) }
  WHEN 'phone' THEN EXISTS { MATCH (:Phone {number: $id}) }
  WHEN 'loan' THEN EXISTS { MATCH (:Loan {id: $id}) }
  WHEN 'platform' THEN EXISTS { MATCH (:Platform {id: $id}) }
  WHEN 'entry' THEN EXISTS { MATCH (:Entry {id: $id}) }
  WHEN 'record' THEN EXISTS { MATCH (:Record {id: $id}) }
  ELSE false
END AS found
