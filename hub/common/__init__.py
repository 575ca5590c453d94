"""Small helpers several capabilities and the command line share (the core never imports
``bhhub.cli``): text cut for people (``text``), the rule for files named by a person
(``filekinds``), answers remembered per loaded table (``memo``), identifier checks (``identifiers``)."""
