"""Media gateway: the call WebSocket, the web softphone, health and readiness."""
