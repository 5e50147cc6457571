/// The embedded defaults: config/msrpgw.toml, word for word (a unit test checks
/// they stay the same). `msrpgw serve` without --config runs on these.
enum EmbeddedDefaults {
    static let configuration = #"""
# msrpgw configuration: every key, with its default.
#
# Every key can be overridden by an environment variable named MSRPGW_<SECTION>_<KEY>
# (MSRPGW_API_TOKEN, MSRPGW_MSRP_PORT, MSRPGW_QUEUE_RETRY_SCHEDULE='["1s", "1m"]',
# MSRPGW_WEBHOOKS_OPS_SECRETS='["whsec_..."]'). A value is read as TOML when it
# parses as TOML (numbers, booleans, arrays), else as a string. MSRPGW_ROUTES
# takes an inline table: MSRPGW_ROUTES='{ "sip:ops@gw.example" = ["webhook:ops"] }'.
#
# Check a file without starting anything: msrpgw check-config FILE

[gateway]
# The gateway's own URI: the From of its system messages.
identity = "sip:gateway@msrpgw.invalid"
# This node's id (0-1023): part of every event id and of its lease owner name.
node = 0
# Queue database (data_dir/queue.sqlite) and large message bodies (data_dir/bodies).
data_dir = "var"
log_level = "info"
# Largest message accepted, in bytes (413 above it).
max_message_bytes = 16777216
# Bodies up to this many bytes are kept in the database, larger ones as files.
inline_body_limit = 262144
# What MSRP peers may send: message/cpim first (this is a CPIM gateway).
accept_types = ["message/cpim", "text/plain"]
# What may be wrapped in CPIM.
accept_wrapped_types = ["text/plain", "text/html", "message/imdn+xml", "application/json"]
# Where plain (non-CPIM) messages go, unless the session was created with its
# own route: one of the [routes] addresses. Unset: such messages are refused (403).
# default_route = "sip:ops@gw.example"

[msrp]
listen = "127.0.0.1"
port = 2855
# The host in our a=path (what peers connect to).
advertised_host = "127.0.0.1"
# An msrps (TLS) listener: set tls_port, tls_certificate and tls_key (PEM files).
tls_port = 0
# tls_certificate = "/etc/msrpgw/cert.pem"
# tls_key = "/etc/msrpgw/key.pem"
idle_timeout = "300s"
# A session created through the API that nobody connects to within this is closed.
bind_timeout = "60s"
transaction_timeout = "30s"
chunk_size = 65536
# Threads for MSRP connections. One by default: a request relayed between
# connections on two threads costs a thread wake-up, which cost more than the
# relaying itself (BENCHMARKS.md); raise it when one core cannot keep up.
# 0 shares the process's threads (one per core).
event_loops = 1
# MSRP over WebSocket (RFC 7977) for browsers: the `msrp` sub-protocol, one chunk
# per message. ws_port is plain WebSocket, for development and only on loopback;
# wss_port needs tls_certificate and tls_key. ws_origins: the pages allowed to
# connect (their Origin); empty allows any.
ws_port = 0
wss_port = 0
# ws_origins = ["https://chat.example.com"]
# An extra CA (PEM) trusted for msrps connections we open (a relay's, a peer's).
# ca_file = "/etc/msrpgw/msrp-ca.pem"
# An MSRP relay (RFC 4976) for our sessions: AUTH with digest at start and before
# each expiry; answers then put the relay's Use-Path before our URI in a=path.
# relay = "msrps://relay.example.com:2855;tcp"
# relay_username = "msrpgw"
# relay_password = "..."
# relay_expires = 0                 # seconds asked for in AUTH; 0 lets the relay choose

[queue]
# path = "var/queue.sqlite"       # default: data_dir/queue.sqlite
# full: every commit is durable on power loss; normal: on application crash only.
synchronous = "full"
# Delay before each retry (the last repeats), each with full jitter.
retry_schedule = ["0s", "5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"]
max_attempts = 11
# After this age no more attempts: the sender gets a failure REPORT 408.
max_age = "3d"
jitter = true
# Delivered events are purged after this long.
retention = "7d"

[dispatch]
# Events leased per query, how long a lease lasts (a slow delivery extends it),
# and how often workers look for retries that became due.
lease_batch = 64
lease_duration = "120s"
poll_interval = "1s"
# Webhook deliveries in flight at once.
webhook_concurrency = 64

[api]
listen = "127.0.0.1"
port = 8080
# Bearer token for /v1/*. Required when listen is not a loopback address.
# token = "change-me"

[alertmanager]
# Where POST /v1/alertmanager sends alerts, as system messages: MSRP peer
# addresses (their live sessions) or route addresses.
subscribers = []

# Email: a submission server for mailto: targets. Without a host, mailto:
# targets cannot be routed.
[smtp]
# host = "smtp.example.com"
# port = 587                          # 465 with security = "tls"
# security = "starttls"               # starttls (required), tls (implicit, port 465) or none (loudly logged)
# verify_certificate = true
# ca_file = "/etc/msrpgw/smtp-ca.pem" # an extra trusted CA (PEM)
# username = "msrpgw"                 # AUTH, only ever over TLS
# password = "..."
# auth = "auto"                       # auto (PLAIN if offered, else LOGIN), plain or login
# helo = "gw.example.com"
# max_connections = 4                 # connections kept and reused (RSET between mails)
# from = "msrpgw@example.com"         # the From and envelope sender; the MSRP sender is the display name
# reply_to = "ops@example.com"
# subject_template = "Message from {from}"   # when the CPIM message has no Subject
# connect_timeout = "30s"
# reply_timeout = "300s"              # each reply (RFC 5321 §4.5.3.2)
# data_timeout = "600s"               # the reply after the mail's final "."

# SIP user agent (off unless this section has keys): calls with an MSRP offer
# become sessions; SIP MESSAGE (page mode) enters the queue like an MSRP message.
# [sip]
# enabled = true
# listen = "127.0.0.1"
# port = 5060                         # UDP and TCP on the same port
# transports = ["udp", "tcp"]         # and "tls"
# tls_port = 5061                     # default: port + 1
# tls_certificate = "/etc/msrpgw/cert.pem"   # default: msrp's
# tls_key = "/etc/msrpgw/key.pem"
# domain = "gw.example"               # a call to sip:ops@anything uses the route sip:ops@<domain>
# contact_host = "127.0.0.1"          # the host in our Via and Contact
# t1 = "500ms"                        # RFC 3261 timer T1 (retransmissions, time-outs)
# outbound_proxy = "127.0.0.1:5060"   # every request of ours goes there first (UDP)
# aor = "sip:msrpgw@example.com"      # who we are: From of our calls, the address registered
# username = "msrpgw"                 # digest user for 401/407 challenges (default: the AOR's user)
# password = "..."
# registrar = "sip:example.com"       # REGISTER the AOR there, refreshed before expiry
# register_expires = 3600
# call_out = true                     # call sip: peers that messages wait for (default: with an outbound proxy)
# hangup_after = "2s"                 # BYE once nothing is left for the peer this long
# redial_after = "60s"                # after a failed call, wait this long before calling the peer again

# An IRC network (one bot connection; reconnects by itself). Route targets
# irc://NAME/channel (the channel #channel) or irc://NAME/nick,isnick.
# [irc.libera]
# host = "irc.libera.chat"
# port = 6697                         # 6667 with tls = false
# tls = true                          # certificates verified unless verify_certificate = false
# verify_certificate = true
# ca_file = "/etc/msrpgw/irc-ca.pem"
# nick = "msrpgw"                     # taken: msrpgw_, msrpgw__, msrpgw1...
# user = "msrpgw"
# real_name = "msrpgw bridge"
# password = "..."                    # server password (PASS)
# sasl = "none"                       # none, plain (TLS only; sasl_user, sasl_password) or external
# channels = ["#ops", "#secret key"]  # "#channel key" for keyed channels
# burst = 5                           # flood control: lines at once, then lines_per_second
# lines_per_second = 2                # 0 turns flood control off
# max_lines = 10                      # one message becomes at most this many lines
# reconnect_min = "2s"                # reconnect backoff: doubling from here (with jitter)
# reconnect_max = "120s"
# bridges = { "#ops" = "sip:ops@gw.example" }   # what is said in #ops goes to the route's MSRP sessions
# announce = ["join", "kick", "nick", "part", "quit", "topic"]  # channel events passed on as system messages
# puppets = 0                         # up to this many IRC connections, one per MSRP participant of a bridged room
# puppet_suffix = "[m]"               # a puppet's nick: the participant's user part and this (alice[m])

# Chat rooms (RFC 7701): sessions joined to a room address (?route= or a SIP
# call to it) hear each other; private messages by address or nickname. A room
# may also be a route (to bridge it to IRC, say).
[rooms]
# "sip:chat@gw.example" = { nicknames = true }

# The MSRP relay role (RFC 4976): clients AUTH with digest and get a path
# through this gateway (Use-Path); traffic for the gateway's own sessions is still
# delivered here. uri: the relay's URI, by default our msrps listener (else msrp).
[relay]
enabled = false
# uri = "msrps://relay.example.com:2856;tcp"
# realm = "msrpgw"
# users = { alice = "secret" }
# Tokens a browser may present at the WebSocket handshake (?access_token=, a
# msrpgw_token cookie or Authorization: Bearer): its AUTH then needs no digest.
# The API token counts too (the web client at /client signs in with it).
# tokens = { "a-long-random-token-for-carol" = "carol" }
# min_expires = 60
# max_expires = 3600

# Routes: a CPIM To address and its targets. Only these are reachable; anything
# else is refused with 403 (no open relay). Targets: webhook:NAME (a
# [webhooks.NAME] below), an https:// URL of one, mailto: addresses (through
# [smtp]; mailto:a@x,b@y is one mail to both), irc://NETWORK/channel (through
# [irc.NETWORK]), sip:/sips:/im: MSRP peers.
[routes]
# "sip:ops@gw.example" = ["webhook:ops"]

# A webhook receiver. Every request is signed (Standard Webhooks): one
# signature per secret, so secrets can be rotated.
# [webhooks.ops]
# url = "https://hooks.example.com/msrp"
# secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
# timeout = "10s"
# headers = { "X-Api-Key" = "..." }
"""#
}
