"""The security team's surface: admin REST API, admin pages and the audit trail's views.

Modules: `errors` (the one admin error envelope), `auth` (admin tokens, server-side admin
sessions, CSRF), `views` (rows → JSON without secrets), `api` (`/admin/api/...`), `openapi`
(the API's description), `pages` (`/admin/...`, Jinja2).
"""
