"""The results database (SQLite): the store the pipeline writes (`store`), what is read back
(`reads`, `records`, `tables`), its schema and migrations, and the counting rules its summaries are
rebuilt with (`counts`, `ledger`); and the review's tables in the same file: reviewed labels and
their audit chain (`review_store`, `review_records`, `review_chain`), the release rules and
releases (`release_gates`, `releases`), model validations (`validations`) and the review pictures
prepared ahead (`prepared_pictures`)."""
