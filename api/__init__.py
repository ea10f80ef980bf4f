"""The thin HTTP layer: validates, authorizes, starts workflows and sends signals."""
