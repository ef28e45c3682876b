"""Budgets and rate limits per virtual key and per user, with a memory and a Redis backend.

`caps` (what a key allows) · `periods` (windows) · `pricing` (what tokens cost) · `plan`
(one request's question) · `backend` (the reservation scheme) · `memory`, `redis_backend`,
`lua` (the two stores) · `limiter` (what the proxy calls) · `respond` (headers, 429s, usage).
"""
