"""Blob stores: where the bytes of attachments live (:class:`helpkit.ports.BlobStore`).

``helpkit.blobs.memory`` keeps them in the process (``memory://``); ``helpkit.blobs.folder``
keeps them in a folder on disk (``file:///path/to/folder``), content-addressed by SHA-256;
``helpkit.blobs.sqlite`` keeps them as rows of an SQLite store's file (``sqlite:///desk.db``),
content-addressed too, through the rows the store offers (the built-in plugin opens the store
and hands it in). All three are registered by the built-in plugin through
``helpkit_register_blob_stores`` and opened by URL (``Helpdesk(blobs="file:///srv/helpkit/blobs")``).
Nothing is imported here.
"""
