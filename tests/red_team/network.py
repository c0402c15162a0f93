# Call out: fetch the answers, or send the data somewhere.
import socket

try:
    socket.create_connection(("127.0.0.1", int("RED_TEAM_PORT")), timeout=3).sendall(b"red team")
except OSError as err:
    raise SystemExit(f"blocked: no network ({err.strerror or err})")
raise SystemExit("reached the network")
