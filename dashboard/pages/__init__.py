"""The dashboard's pages, one module each: ``PAGE`` (path, title), ``layout`` and
``register(app)`` (its callbacks). Component ids start with the page's prefix."""
