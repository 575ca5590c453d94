"""Alerts reach people: email (SMTP), a webhook, and plugins (``bhhub_alert_raised``).

An alert is a row in the store (``bhhub.exchange.alerts``), raised by whichever process saw the
incident: the runner, a person's ``bhhub exchange``, an intake. Delivering it is the runner's
work, from the store: every dispatcher tick (and at start) sends each alert not yet delivered to
every target, and records per target that it went. So an alert raised by a command while the
runner was down still goes out when it starts; two deliveries at once (a second runner, a twin
process) send each alert once per target, as each takes its targets before sending; a process
killed between sending and recording sends it again once its lease (``delivery.LEASE``) runs out rather
than never (at least once, at most ``MAX_ATTEMPTS`` times); a target that is down is tried again
on the next tick, up to ``MAX_ATTEMPTS`` ticks, without repeating the targets that already have it.

Configured in ``bhhub.toml`` (both optional; secrets from the environment or a file, never here):

    [notify.email]
    host = "smtp.example.org"
    port = 587                      # default 587 with starttls, 25 without
    starttls = true
    username = "bhhub@example.org"
    password_env = "BHHUB_SMTP_PASSWORD"   # or password_file = "/etc/bhhub/smtp.pw"
    sender = "bhhub@example.org"
    to = ["billing@example.org"]
    timeout = 20

    [notify.webhook]
    url = "https://chat.example.org/hooks/billing"  # no user:password@ in it: the token goes below
    # url_env = "BHHUB_WEBHOOK_URL"        # instead, when the path or query is the secret (Slack's)
    timeout = 10
    token_env = "BHHUB_WEBHOOK_TOKEN"      # sent as "Authorization: Bearer ..." when set

    [notify]
    deadline = 30                   # seconds for the whole of one send to one target (a plugin too), <= 300

``timeout`` bounds each connection and each read only: a server that answers a byte every few
seconds never trips it. So every send (to email, the webhook, each plugin) runs in a daemon
thread that the caller stops waiting for at ``deadline`` (or as soon as the runner is told to
stop): the send counts as failed, is recorded so, and is tried again on the next tick like any
target that is down. The abandoned thread cannot hold up the process's exit (daemon), and while
it still hangs no second thread is started for the same target (``deadline.hanging``).

What leaves the hub by email and webhook is ids only: the alert's id, kind, key (which names
rows of the hub: a mailbox, a transmission, ``patient:42``, never a name or member id) and when
it was raised. The message (an eligibility alert's gives the date of service) goes too only with

    [notify]
    include_message = true

Plugins (``bhhub_alert_raised``) run inside the hub and are given the whole alert.

The package: ``targets`` (what ``[notify]`` configures, and the email and webhook senders),
``deadline`` (a send bounded as a whole), ``delivery`` (the dispatcher's work from the store, and
``bhhub notify test``). Importing it imports neither smtplib nor requests: each send does.
"""

from bhhub.notify.deadline import hanging, within_deadline
from bhhub.notify.delivery import CLEARED, LEASE, MAX_ATTEMPTS, SENT, TEST_KIND, deliver_pending, send_test
from bhhub.notify.targets import AlertNotice, DeliveryFailed, EmailTarget, WebhookTarget, targets

__all__ = ["CLEARED", "LEASE", "MAX_ATTEMPTS", "SENT", "TEST_KIND", "AlertNotice", "DeliveryFailed", "EmailTarget",
           "WebhookTarget", "deliver_pending", "hanging", "send_test", "targets", "within_deadline"]
