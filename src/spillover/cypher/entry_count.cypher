MATCH (e:Entry)
RETURN count(e) AS n
