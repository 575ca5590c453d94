"""The actions a person takes from the denial worklist (``bhhub denials act``, the workspace's
buttons), and what each does: a follow-up claim (``bhhub.remittance.followups``) or a resolution
recorded as it stands. Names are the worklist's own (mappings/remittance/denials.toml's
``action``), plus ``appeal_done`` for an appeal sent. No imports: the CLI reads it at start-up."""

FOLLOWUP_ACTIONS = {"corrected_claim": "replace", "void": "void", "bill_secondary": "secondary"}
RESOLVING_ACTIONS = {"appeal_done": "appeal sent", "write_off": "written off"}
ACTIONS = (*FOLLOWUP_ACTIONS, *RESOLVING_ACTIONS)
