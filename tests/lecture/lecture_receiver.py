# The lecture's receiver exactly as printed in its notes, faults included
# (struct.pack("4sL", ...), signed TTL, 16-byte reply buffer). The tests run it
# against this project's scripts to show that both talk to the textbook code.

import socket
import struct

multicast_group = '224.10.10.10'
server_address = ('', 10000)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(server_address)

# Join multicast group
group = socket.inet_aton(multicast_group)
mreq = struct.pack('4sL', group, socket.INADDR_ANY)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

# Listen for messages
while True:
    data, address = sock.recvfrom(1024)
    print(f'received {len(data)} bytes from {address}')
    
    # Send acknowledgement back to sender
    sock.sendto(b'ack', address)
