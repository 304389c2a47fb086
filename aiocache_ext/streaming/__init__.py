"""How a response is stored: format (pure), store/writer/reader (I/O), Starlette glue."""
