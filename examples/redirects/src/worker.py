"""Short links and a site config at the edge: a read-heavy worker.

    GET /<slug>   redirect to the URL stored under "link:<slug>" (status from its metadata,
                  302 by default); unknown slugs go to FALLBACK_URL (a var of wrangler.toml)
    GET /         the current config and how to use the service, as JSON

Every request reads the "config" key and a link; both change rarely, so the reads pass a long
`cache_ttl`: served by `edgekv edge`, a location keeps them cached that long (and refreshes hot
keys in the background), so the central server sees almost none of this traffic. Under
`edgekv dev` the store is local and `cache_ttl` changes nothing.

An empty namespace is filled with demo links on first use, after the first response
(`ctx.wait_until`), so the example works out of the box.
"""

import json

from edgekv.workers import Response, WorkerEntrypoint

LINK_TTL = 3600  # seconds a location may serve a cached link: links almost never change
CONFIG_TTL = 60  # the config is checked at least once a minute (the minimum cache_ttl)

DEMO_CONFIG = {"maintenance": False, "site": "edgekv redirects example"}
DEMO_LINKS = {
    "kv": ("https://developers.cloudflare.com/kv/", 301),
    "wrangler": ("https://developers.cloudflare.com/workers/wrangler/", 302),
    "python": ("https://docs.python.org/3/", 302),
}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.method not in ("GET", "HEAD"):
            return Response("Method not allowed\n", status=405, headers={"allow": "GET, HEAD"})
        config = await self.env.LINKS.get("config", "json", cache_ttl=CONFIG_TTL)
        if config is None:
            self.ctx.wait_until(self.seed())
            config = DEMO_CONFIG
        if config.get("maintenance"):
            return Response("Down for maintenance\n", status=503, headers={"retry-after": "300"})

        slug = request.path.strip("/")
        if not slug:
            return Response.json({"config": config, "usage": "GET /<slug> redirects"})
        link = await self.env.LINKS.get_with_metadata(f"link:{slug}", cache_ttl=LINK_TTL)
        if link.value is None:
            return Response.redirect(self.env.FALLBACK_URL, 302)
        response = Response.redirect(link.value, (link.metadata or {}).get("status", 302))
        if link.cache_status:  # set when a location cache served the read (edgekv edge)
            response.headers["x-kv-cache"] = link.cache_status
        return response

    async def seed(self):
        """Demo data for an empty namespace (the same as links.json)."""
        for slug, (url, status) in DEMO_LINKS.items():
            await self.env.LINKS.put(f"link:{slug}", url, metadata={"status": status})
        await self.env.LINKS.put("config", json.dumps(DEMO_CONFIG))
