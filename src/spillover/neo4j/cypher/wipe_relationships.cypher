// --wipe, step 1: every relationship, in transactions of $batch rows (run in an
// auto-commit transaction). Relationships first, so that deleting a dense node
// (a platform with a million loans) never needs one huge transaction.
MATCH ()-[r]->()
CALL (r) {
  DELETE r
} IN TRANSACTIONS OF $batch ROWS
