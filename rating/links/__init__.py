"""Rating links: single-use tokens that open one evaluation for rating.

A channel hands a link out (the SMS invitation, the SMS ask-reason reply); the rating page
(ratepage/) redeems it. Neither knows the other: both meet here.
"""
