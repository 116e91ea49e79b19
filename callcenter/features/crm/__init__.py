"""Customer lookup and relationship routing (a CRM or the local customer table) and click-to-call."""
