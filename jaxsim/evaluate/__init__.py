"""Evaluation: pure metric functions of arrays (scores or embeddings, labels).

Modules: `search` (streamed scores and exact top-k), `verification`, `retrieval`,
`openset`, `overlap` (overlap statistics and the sqrt(2) null), `calibration`, `fusion`.
Scores follow one convention: higher = more likely the same identity; distances are negated.
"""
