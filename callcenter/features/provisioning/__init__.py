"""Desk-phone auto-provisioning: Yealink, Polycom, Grandstream and Snom files served on a listener of
their own, per-MAC files (with the SIP secret) only behind per-device HTTP digest authentication."""
