"""Who is speaking: per-person profiles chosen by voice (issue 18).

    embedder.py     audio -> 256-d voice embedding (resemblyzer's pretrained speaker encoder, our own front end)
    speech_check.py is this recording one person speaking? (silence, music/tone/noise, two voices)
    store.py        SQLite store of enrolled voices (embeddings only, never audio)
    identify.py     nearest enrolled voice above the threshold, else the household default
    enrol.py        enrolment: checks, warnings about near-identical voices, saving
    phrases.py      "remember my voice as Anna" / "forget my voice" (before the intent parser)
    service.py      what the daemon holds: the store, a lazily loaded embedder, identification
    cli.py          `assistant voices add/list/remove`

Inference only; nothing here trains.
"""
