"""Claim status: the 276 inquiry and the 277 answer (005010X212).

    write_276(inquiries, envelope, controls, created_at) -> bytes     bhhub.claimstatus.x276
    read_277(content) -> [ClaimStatusResult]                           bhhub.claimstatus.x277
    match_results(inquiries, results) -> [InquiryAnswer]              bhhub.claimstatus.matching

Pure library code: nothing here touches the store, the CLI or a transport.
"""
