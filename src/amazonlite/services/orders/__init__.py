"""Orders: checkout, the order saga's state machine and its deadlines."""
