"""Images: the store of image bytes and the operator's import of images.

- :mod:`ocs.images.store`: the content-addressed directory of image files (file
  I/O only; no database, no configuration), usable by any service.
- :mod:`ocs.images.importer`: putting a file into the store and registering it
  as an image (``ocs-manage image import``), and the default image the
  all-in-one registers on first start. It uses the database.
"""
