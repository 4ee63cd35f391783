# pyright: reportTypeCommentUsage=false
"""The supervisor's entry point (last in the payload): read the config, then serve, with lanes or without."""

from .frames import Channel
from .install import widen_pipes
from .lanes import Multiplexer
from .serve import serve
from .supervisor import Supervisor


def main():
    # type: () -> None
    """The supervisor's entry point: read the config, then serve as a ``Multiplexer`` or a ``Supervisor``."""
    widen_pipes((0, 1))
    chan = Channel(0, 1)
    config, rest = chan.recv_blocking()
    if config is None:
        return
    if int(config.get("lanes", 1)) > 1:
        Multiplexer(chan, config).serve()  # the host sends nothing more before "ready"
        return
    sup = Supervisor(chan, config)
    sup.pending.extend(rest)
    serve(sup)


if __name__ in ("__main__", "__sf_supervisor__"):
    main()
