"""Open311 GeoReport v2: the standard interface through which third-party apps list the kinds of
problem the district takes (services = categories), report one (a service request = a case on
the `open311` channel) and follow the public state of cases.

Mounted at /open311/v2/ (config/urls.py); documented in docs/open311.md. What the public reads
may show is decided in docs/decisions/0009-open311-public-requests.md: no personal data ever,
and free text only for cases that came in through Open311.
"""
