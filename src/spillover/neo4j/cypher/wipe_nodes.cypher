// --wipe, step 2: every node (DETACH for any relationship written meanwhile).
MATCH (n)
CALL (n) {
  DETACH DELETE n
} IN TRANSACTIONS OF $batch ROWS
