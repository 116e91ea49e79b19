"""Access to the HTTP API, in one place: :mod:`.policy` (who may do what; pure), :mod:`.sessions`
(sign-in lock-out and browser sessions; pure), :mod:`.passwords` (Argon2id), :mod:`.store` (the
``api_audit`` table), :mod:`.service` (sign-in, request principals, CSRF, the audit) and
:mod:`.schema` (its config)."""
