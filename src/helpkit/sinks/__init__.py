"""Sinks: adapters that publish a store's change feed to systems outside helpkit.

A sink follows the change feed (:class:`~helpkit.ports.ChangeFeed`) with a named, durable
cursor, hands each committed event to the outside system, and moves its cursor only once that
system has taken the events (at least once: a sink that stops between the two publishes the
unsaved events again when it starts). Like stores and channels, sinks import only the ports,
ids, errors and the domain.

- :mod:`helpkit.sinks.nats`: NATS JetStream (the ``nats`` extra, ``pip install
  'helpkit[nats]'``).
"""

from __future__ import annotations
