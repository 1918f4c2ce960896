"""The fleetops host agent."""

import os

# Commands and sessions run as another user are started with fork() (vfork cannot switch users),
# and grpc's fork handlers then run in the child and crash it (SIGABRT/SIGSEGV in
# ev_epoll1_linux.cc) before it reaches exec. The agent never uses grpc in a forked child, so the
# handlers are turned off before grpc is first imported (this package is imported before any of
# its modules, which import grpc).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
