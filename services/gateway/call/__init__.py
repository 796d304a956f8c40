"""A call: its media leg (call/leg.py) and the parties that drive it in turn (call/party.py)."""
