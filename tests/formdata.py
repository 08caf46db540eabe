"""A multipart/form-data body written byte for byte as n8n's `form-data` package writes it."""

from __future__ import annotations

import secrets

Parts = list[tuple[str, str | tuple[str, str, bytes]]]  # form fields in order: a value, or (file name, type, bytes)


def multipart(parts: Parts) -> tuple[str, bytes]:
    """A form-data body as n8n's `form-data` package writes it: the parts in the order given."""
    boundary = "--------------------------" + "".join(str(secrets.randbelow(10)) for _ in range(24))
    chunks = []
    for name, value in parts:
        if isinstance(value, str):
            chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        else:
            filename, content_type, content = value
            chunks.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n".encode()
                + content
                + b"\r\n"
            )
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)
