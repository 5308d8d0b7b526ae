# The lecture's sender exactly as printed in its notes, faults included
# (struct.pack("4sL", ...), signed TTL, 16-byte reply buffer). The tests run it
# against this project's scripts to show that both talk to the textbook code.

import socket
import struct

message = b'very important data'
multicast_group = ('224.10.10.10', 10000)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.2)

# Set TTL to 1 (local network only)
ttl = struct.pack('b', 1)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)

# Send to multicast group
sent = sock.sendto(message, multicast_group)

# Wait for acknowledgements
while True:
    try:
        data, server = sock.recvfrom(16)
        print(f'received {data!r} from {server}')
    except socket.timeout:
        print('timed out, no more responses')
        break
