"""Eligibility and benefits: the 270 inquiry and the 271 response (005010X279A1).

    write_270(requests, envelope, controls, created_at) -> bytes      bhhub.eligibility.x270
    read_271(content) -> [EligibilityResponse]                        bhhub.eligibility.x271
    EligibilityRequest                                                bhhub.eligibility.inquiry
    EligibilityResponse, MentalHealthSummary, Trace ...               bhhub.eligibility.benefits
    ServiceBenefits, CarveOut, by_service_type                        bhhub.eligibility.service_benefits
    BenefitEntry, DatePeriod, Rejection, RelatedEntity, Delivery      bhhub.eligibility.benefit_entries

The X12 modules are pure library code. Around them: ``store`` (checks and answers kept as
history), ``service`` (asking a payer-portal plugin, else queuing a 270 for the mailbox),
``effects`` (what a changed answer raises and re-checks) and ``sweep`` (the daily run over
upcoming appointments and unsent claims). What an answer means for a claim: ``coverage``
(covered, not covered, excluded), ``conditions`` (authorization rules read from MSG, with
their condition), ``refusals`` (an AAA's meaning for the member's claims) and
``service_types`` (which service types a procedure code falls under). Code meanings and
choices (the service types a 270 asks about, the order a mental-health summary prefers, what
marks a carve-out, how MSG text states an authorization rule) are the table
``mappings/x12/eligibility_codes.toml``; what they mean for claims is
``mappings/rules/eligibility.toml``.
"""
