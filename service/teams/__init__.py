"""Teams and the ledger: client keys, the usage ledger and its migrations, metrics, cost reports and the
dashboard."""
