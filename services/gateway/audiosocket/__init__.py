"""Asterisk AudioSocket: the gateway as a telephone peer (the app and the channel driver)."""
