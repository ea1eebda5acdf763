"""The seed's to-do worker: one to-do item per key, at /to-do/<id>.

    GET    /to-do/<id>   the item (404 "Value not found" when there is none)
    PUT    /to-do/<id>   store the request body as the item (201)
    DELETE /to-do/<id>   remove it (204)

`TODO` is the KV binding of wrangler.toml: a module global (service-worker style) and also
`env.TODO` (modules style). Both name the same namespace.
"""

from edgekv.workers import Response

PREFIX = "/to-do/"


async def on_fetch(request, env, ctx):
    if not request.path.startswith(PREFIX) or request.path == PREFIX:
        return Response("Not found: use /to-do/<id>\n", status=404)
    key = "to-do:" + request.path.removeprefix(PREFIX)

    if request.method == "GET":
        value = await TODO.get(key)  # noqa: F821 - the binding, injected as a module global
        if value is None:
            return Response("Value not found", status=404)
        return Response(value)
    if request.method == "PUT":
        await env.TODO.put(key, await request.bytes())
        return Response(None, status=201)
    if request.method == "DELETE":
        await env.TODO.delete(key)
        return Response(None, status=204)
    return Response("Method not allowed\n", status=405, headers={"allow": "GET, PUT, DELETE"})
