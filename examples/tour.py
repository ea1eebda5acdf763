"""The Python API in five minutes: `python examples/tour.py` (data goes to ./data; run it again)."""

import asyncio
import time

import edgekv


async def main() -> None:
    async with edgekv.open("./data") as kv:  # embedded SQLite in ./data (created if missing)
        # A namespace (.id is 32 hex characters): created on the first run, found again later.
        found = [ns for ns in await kv.list_namespaces() if ns.title == "My tasks"]
        todo = kv.namespace(found[0].id) if found else await kv.create_namespace("My tasks")

        # Writing key-value pairs: str, bytes-like, binary files and byte streams
        await todo.put("to-do:123", "buy milk")
        await todo.put("session:1", "x", expiration_ttl=600)  # gone 10 minutes from now
        await todo.put("promo", "x", expiration=int(time.time()) + 3600)  # seconds since epoch
        await todo.put("to-do:124", "walk dog", metadata={"someMetadataKey": "someValue"})

        # Reading: "text" (default), "json", "bytes" (alias "arrayBuffer"), "stream"
        print(await todo.get("to-do:123"))  # buy milk (None when missing)
        print(await todo.get("to-do:123", "bytes"))  # b'buy milk'
        result = await todo.get_with_metadata("to-do:124")  # .value, .metadata, .cache_status
        print(result.value, result.metadata)  # walk dog {'someMetadataKey': 'someValue'}
        print(await todo.get(["to-do:123", "nope"]))  # {'to-do:123': 'buy milk', 'nope': None}
        print(await todo.get("to-do:123", cache_ttl=3600))  # through a location: cached 1 h

        # Listing: UTF-8 byte order, literal prefixes, cursors
        page = await todo.list(prefix="to-do:", limit=1)
        names = [key.name for key in page.keys]
        while not page.list_complete:
            page = await todo.list(prefix="to-do:", limit=1, cursor=page.cursor)
            names += [key.name for key in page.keys]
        print(names)  # ['to-do:123', 'to-do:124']

        # Errors: KVError (.status) and KVTypeError (also a TypeError), with Workers KV's messages
        try:
            await todo.put("k", "v", expiration_ttl=5)
        except edgekv.KVError as exc:
            print(exc)  # KV PUT failed: 400 Invalid expiration_ttl of 5. Expiration TTL must be...

        # Deleting, and the bulk operations the REST API has
        await todo.delete("to-do:123")
        await todo.put_many([{"key": "a", "value": "1"}, ("b", "2")])
        await todo.delete_many(["a", "b"])
        print(await todo.get("to-do:123"))  # None


if __name__ == "__main__":
    asyncio.run(main())
