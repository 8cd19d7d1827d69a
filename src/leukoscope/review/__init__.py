"""Review and sign-off: reviewed labels and audit in the results database, and the local web app."""
