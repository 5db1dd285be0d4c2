"""The rating page: GET|POST /r/{token}, where a citizen rates (or adds a reason) by link.

A part beside ivr/, sms/, bridge/, scheduler/ and console/: it redeems the domain's rating
links (rating/links/), whichever channel handed them out, and rates through the domain.
"""
