// Feature flags at the edge: flags live in the FLAGS namespace as JSON ({ enabled, rollout }),
// admins change them with PUT/DELETE, and every request asks GET /check/<flag>?user=<id>.
// Reads use cacheTtl so a location answers from its cache; writes go to the centre.
import { inRollout } from "./rollout.mjs";

const PREFIX = "flag:";

function json(data, status = 200) {
  return Response.json(data, { status });
}

async function readFlag(env, name) {
  const { value, metadata, cacheStatus } = await env.FLAGS.getWithMetadata(PREFIX + name, {
    type: "json",
    cacheTtl: Number(env.CACHE_TTL),
  });
  return value === null ? null : { name, ...value, updated: metadata?.updated ?? null, cacheStatus };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, kind, name] = url.pathname.split("/");

    if (kind === "flags" && !name && request.method === "GET") {
      const flags = [];
      let cursor;
      do {
        const page = await env.FLAGS.list({ prefix: PREFIX, cursor });
        for (const key of page.keys) flags.push(key.name.slice(PREFIX.length));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return json({ flags });
    }

    if (kind === "flags" && name) {
      if (request.method === "GET") {
        const flag = await readFlag(env, name);
        return flag ? json(flag) : json({ error: `no flag ${name}` }, 404);
      }
      if (request.method === "PUT") {
        if (request.headers.get("authorization") !== `Bearer ${env.ADMIN_TOKEN}`) {
          return json({ error: "admin token required" }, 401);
        }
        let body;
        try {
          body = await request.json();
        } catch {
          return json({ error: "body must be JSON" }, 400);
        }
        const rollout = Math.max(0, Math.min(100, Number(body.rollout ?? 100)));
        const flag = { enabled: Boolean(body.enabled), rollout };
        await env.FLAGS.put(PREFIX + name, JSON.stringify(flag), {
          metadata: { updated: new Date().toISOString() },
        });
        return json({ name, ...flag }, 201);
      }
      if (request.method === "DELETE") {
        if (request.headers.get("authorization") !== `Bearer ${env.ADMIN_TOKEN}`) {
          return json({ error: "admin token required" }, 401);
        }
        await env.FLAGS.delete(PREFIX + name);
        return new Response(null, { status: 204 });
      }
      return json({ error: "method not allowed" }, 405);
    }

    if (kind === "check" && name && request.method === "GET") {
      const user = url.searchParams.get("user") ?? "";
      const flag = await readFlag(env, name);
      const on = flag !== null && flag.enabled && (await inRollout(name, user, flag.rollout));
      return json({ flag: name, user, on, cacheStatus: flag?.cacheStatus ?? null });
    }

    return json({ error: "not found" }, 404);
  },
};
