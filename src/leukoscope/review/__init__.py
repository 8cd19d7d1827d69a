"""Review and sign-off: the local web app (`leukoscope review`); the review tables it reads and
writes are the results database's (`leukoscope.results.review_store` and its neighbours)."""
