"""What both ends of a connection agree on, without torch or the server: message limits, which addresses
are on this machine, and the channel credentials (plain on loopback, TLS when a CA is given).

Depends on grpc only; ``client.py`` and ``server.py`` both import it.
"""

import ipaddress
import socket

import grpc

MESSAGE_LIMIT = 16 << 20
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MESSAGE_LIMIT),
                   ("grpc.max_send_message_length", MESSAGE_LIMIT)]


def is_loopback(host):
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def is_local_address(address):
    """True for a Unix socket or a loopback host: a daemon that must be on this machine."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.split("///", 1)[-1].rsplit(":", 1)[0]
    return is_loopback(host)


def open_channel(address, tls_ca=None, server_name=None):
    """A channel to the daemon: TLS when ``tls_ca`` (a PEM file of the CA, or the daemon's self-signed
    certificate) is given, plain otherwise (loopback and Unix sockets, where nothing crosses a network)."""
    if not tls_ca:
        return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    with open(tls_ca, "rb") as handle:
        credentials = grpc.ssl_channel_credentials(root_certificates=handle.read())
    options = list(CHANNEL_OPTIONS)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(address, credentials, options=options)
