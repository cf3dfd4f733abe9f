"""The original technical report's API: the routes of its Annex B ("Anexo B"), kept so that
the report's frontend and any client written against it run unchanged against the gateway.

What those clients depend on is kept exactly: the paths, the JSON field names (``unit_id``,
``efficiency``, ``last_updated``, ...) and the enum words (``OPERATIONAL`` / ``MAINTENANCE`` /
``FAULT``, ``improving`` / ``stable`` / ``deteriorating``, ``aumento`` / ``disminución``),
even where the gateway's own words differ: each is mapped explicitly from the gateway's
(:data:`.common.HEALTH_TO_SEED`, :data:`.dashboard.TREND_TO_SEED`). The figures behind them
are the gateway's own (live cache, embedded store, analytics, alarms, inventory), never the
report's random ones: a figure that cannot be computed is null. They are rounded as the
original backend rounded them (:mod:`.rounding`), and sentences are in the report's Spanish
unless ``Accept-Language`` asks for English (:mod:`.language`, :mod:`.sentences`,
:mod:`.alarm_sentences`); the gateway's own routes keep full precision and English.

One module per group of routes: :mod:`.dashboard` (``/``, ``/api/kpis``,
``/api/dashboard/history``, ``/api/stats/advanced``), :mod:`.inventory`
(``/api/supplies/data``, ``/api/inventory``), :mod:`.assets`, :mod:`.alerts`,
:mod:`.maintenance`, :mod:`.energy`, :mod:`.normalized` and :mod:`.reports`. The gateway's own
routes (``/api/alarms``, ``/api/analytics/...``, ``/api/tags/...``) are in the parent package.
"""
