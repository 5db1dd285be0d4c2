"""What the SMS part stores: messages, inbound replies, and their queries."""
