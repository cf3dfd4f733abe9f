"""E-mail notification of alarms: the seed's "send email notification" step, off by default.

The notifier listens to the alarm service (the daemon adds it with ``AlarmService.add_listener``). Of each list of
transitions it keeps only activations (and, if configured, escalations) at ``min_severity`` or
above, and queues them; that is all the alarm path pays. A worker task mails them through SMTP,
with ``smtplib`` on a thread of its own so a slow or silent server never touches the event loop.

Rate limit: at most ``max_per_window`` mails in any ``window_s`` (a sliding window). Each alarm
gets a mail of its own while the window allows; the last mail a window allows summarises every
alarm still waiting, and alarms raised after it wait for the window and go out together in the
next mail. An alarm flood therefore costs the on-call engineer a bounded number of mails and
no alarm is left out of them.

While the server is unreachable, mails are retried with a growing delay and new alarms keep
queueing; beyond ``queue_size`` the oldest are dropped, counted, and the next mail says how many.
Everything is reported in the ``email`` section of /health and on /metrics.

Modules: :mod:`.notifier` (what is mailed, when, rate limit and retries), :mod:`.smtp` (one
blocking SMTP exchange, on the notifier's own thread), :mod:`.service` (the ``email`` service
the daemon starts and attaches to the alarm service).
"""
