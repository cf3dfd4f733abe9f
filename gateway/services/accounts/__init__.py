"""The accounts of the HTTP API: who may call it and with which role.

* :mod:`.users` — the users and their roles in ``<state_dir>/users.sqlite`` (argon2id hashes);
  the ``refineryiq user`` command works on it directly;
* :mod:`.tokens` — signed, expiring bearer tokens and the key that signs them;
* :mod:`.throttle` — login attempts limited per client address and per username;
* :mod:`.service` — :class:`~.service.AccountsService`, the ``users`` service of the daemon
  that holds the three for the HTTP layer (:mod:`gateway.northbound.http.auth`).

Nothing here knows about HTTP: the middleware, the role guard and the login routes live in
the HTTP package and reach the service through ``ApiDeps.accounts``.
"""
