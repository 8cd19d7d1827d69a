"""The results database (SQLite): the store the pipeline writes (`store`), what is read back
(`reads`, `records`, `tables`), its schema and migrations, and the counting rules its summaries are
rebuilt with (`counts`, `ledger`)."""
