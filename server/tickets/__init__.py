"""The helpdesk: people, staff, tickets with tracking numbers, their lifecycle and reports.

- ``numbering``: tracking numbers (prefix + YYMM + sequence), safe under concurrency.
- ``people``, ``staff``: the people directory (who reports) and staff profiles (who
  handles); ``importer``: the directory from CSV or XLSX.
- ``actors``: who acts and what that allows; ``service``: the lifecycle rules, each step
  a ticket event and a ``ticket.*`` gateway event.
- ``queries``, ``stats``, ``export``: filters, statistics, CSV/XLSX exports.
- ``schemas``: the JSON shapes; ``host``: what the workflow nodes call.
"""
