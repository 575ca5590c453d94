"""The hub as a running thing: its home and settings (``config``), the object that opens the store,
plugins and mapping tables together (``app``), the plugin manager (``plugin_host``), the mapping
tables (``mapping_tables``), where log lines go (``logs``), the clock every day-counting rule reads
(``clock``) and the fault points the crash tests use (``crashpoints``)."""
