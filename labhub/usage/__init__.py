"""Who used what: usage records of every lab, the report, the hub's metrics and each user's page."""
