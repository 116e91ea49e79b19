"""The API feature: ``/api/v1`` (REST, :mod:`.routes`), the live event stream and floor (:mod:`.live`),
the OpenAPI document generated from the route table and models (:mod:`.openapi`, :mod:`.models`),
journal reads off the loop (:mod:`.queries`), the wallboard's config (:mod:`.schema`) and the
browser pages (``static/``, served at ``/ui/``). Who may do what: :mod:`callcenter.features.access`."""
