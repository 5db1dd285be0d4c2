"""SMS: invitations, reminders, replies, delivery status and the rating-link page."""
