"""Intake: the inbox that stores every payload raw before it is parsed (``inbox``), intake of many
payloads at once (``many``), and the records that are not encounters: registrations and
appointments (``records``, ``registrations``)."""
