"""Cross-organisation deployment: party agents, an aggregation server, mutual TLS.

Needs the ``network`` extra (``pip install 'fedsk[network]'``: grpcio). The
pieces, one module each: the wire format (``_codec``), start-up kits
(``_certs``), the party's durable ledger (``_ledger``), the party's policy
(``_policy``), the party agent (``_agent``), the relay server
(``_server``), the coordinator's :class:`RemoteFederation` (``_remote``) and
the ``fedsk certs / serve / party`` commands (``_commands``). Importing this
package does not import grpc; using the server, an agent or a connection
does, with a one-line error naming the extra if it is missing.
"""

from ._certs import provision
from ._codec import MessageError, decode, encode
from ._ledger import DurableLedger
from ._policy import Policy, Refusal
from ._remote import RemoteFederation, connect

__all__ = [
    "DurableLedger",
    "MessageError",
    "Policy",
    "Refusal",
    "RemoteFederation",
    "connect",
    "decode",
    "encode",
    "provision",
]
