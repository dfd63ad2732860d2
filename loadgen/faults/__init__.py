"""Real faults for chaos tests and `loadgen run` (issue 23): kill or hang a process, impair a link.

`process` kills (SIGKILL) or hangs (SIGSTOP, then SIGCONT) a process and restarts what it
killed; `services` starts the restartable pieces a fault hits (a private nats-server, a private
PostgreSQL cluster, any child command such as `live serve`); `netns` builds a link between the
root network namespace and a namespace of our own and impairs it with `tc netem` (latency,
jitter, loss, a partition, a bandwidth cap); `relay` carries TCP across such a link to a server
that listens on loopback; `plan` performs a scenario's `faults:` list against named targets;
`timeline` writes what happened when to `reports/chaos/`. Nothing here imports the platform:
the faults hit processes and links, whatever runs in them.
"""
