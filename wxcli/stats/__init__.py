"""Analytics over the message log in var/state.db: ``wx stats`` and ``wx leads export``.

``query.compute`` does the work in SQL and returns plain figures; the terminal,
JSON and HTML views only present them.
"""
