"""What the SMS part stores: messages, inbound replies, rating links, and their queries."""
