"""Production install on a host with Debian's Asterisk (``callcenter install`` / ``uninstall``).

- :mod:`.asterisk_site` — pure: read the site's Asterisk files (categories, includes), turn the
  whole-file render of :mod:`callcenter.asterisk.render` into fragments that the site's own files
  ``#include`` without clashing with them, and add/remove the marked ``#include`` block.
- :mod:`.installer` — the file system: plan, apply (idempotent, with a manifest), uninstall.
- :mod:`.cli` — the two commands.
"""
