"""Declarative tables (TOML) the hub reads: code rules, fee schedules, payer rules, EHR maps."""
