"""Controller replicas sharing one database: who is alive, where each is reached, which holds a host."""
