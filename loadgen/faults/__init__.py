"""Real faults for chaos tests and `loadgen run` (issue 23): kill or hang a process, impair a link.

`process` kills (SIGKILL) or hangs (SIGSTOP, then SIGCONT) a process and restarts what it
killed; `services` starts the restartable pieces a fault hits (a private nats-server, a private
PostgreSQL cluster, any child command such as `live serve`); `netns` builds a link between the
root network namespace and a namespace of our own and `wire` impairs it in user space (latency,
jitter, loss, a partition, a bandwidth cap); `cdn` makes the nginx nodes of a running
`live.cdn` tier fault targets; `plan` performs a scenario's `faults:` list against named targets;
`timeline` writes what happened when to `reports/chaos/`. Nothing but `cdn` imports the
platform: the faults hit processes and links, whatever runs in them.
"""
