"""Named fakes for what real parts cannot do on demand (camera timeouts, missing nodes, drops)."""
