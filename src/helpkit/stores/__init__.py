"""Storage backends that satisfy :class:`helpkit.ports.Store`.

``helpkit.stores.memory`` is the in-memory reference store. Backends are chosen by URL
through the plugin registry, so nothing is imported here: importing this package never pulls
in a database driver.
"""
