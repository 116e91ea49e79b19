"""After-call survey (CSAT): once the agent hangs up, the caller rates the call with a digit."""
