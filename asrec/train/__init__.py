"""``asrec train``: RecBole's protocol for ASRec, on one process or many."""
