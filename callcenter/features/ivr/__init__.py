"""IVR menus from YAML: :mod:`.model` (the pure menu engine and business hours), :mod:`.handlers`
(FastAGI ``ivr`` and ``fallback``: a call's actions run to their end) and :mod:`.schema` (actions,
menus, schedules)."""
