"""Evaluation: pure metric functions of arrays (scores or embeddings, labels).

Modules: `search` (streamed scores and exact top-k), `verification`, `retrieval`,
`openset`, `overlap` (overlap statistics and the sqrt(2) isotropy test), `calibration`,
`fusion`, and `clustered` (subject-level bootstrap intervals and permutation tests: the
intervals every task reports, since pairs that share a subject are not independent).
Scores follow one convention: higher = more likely the same identity; distances are negated.
"""
