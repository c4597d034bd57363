"""The durable runtime and everything the other apps share."""
