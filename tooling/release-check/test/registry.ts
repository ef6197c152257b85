import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A published version as the registry stores it. */
export interface StoredVersion {
  manifest: Record<string, unknown> & { version: string; dependencies?: Record<string, string> };
  tarball: Buffer;
}

/**
 * The smallest npm-compatible registry `npm publish` / `pnpm publish` / `npm view` need: PUT a package (JSON body
 * with versions and base64 `_attachments`), GET its packument, GET a tarball. In memory, loopback only, for tests.
 */
export async function startRegistry(): Promise<{
  url: string;
  packages: Map<string, Map<string, StoredVersion>>;
  close(): Promise<void>;
}> {
  const packages = new Map<string, Map<string, StoredVersion>>();
  const distTags = new Map<string, Record<string, string>>();
  let url = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0] as string);
      const tarMatch = /^\/(.+)\/-\/(.+\.tgz)$/.exec(path);
      if (req.method === 'GET' && tarMatch) {
        const [, name, file] = tarMatch;
        for (const v of packages.get(name as string)?.values() ?? []) {
          if ((v.manifest['dist'] as { tarball: string }).tarball.endsWith(`/${file}`)) {
            res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(v.tarball);
            return;
          }
        }
        res.writeHead(404).end();
        return;
      }
      const name = path.slice(1);
      if (req.method === 'GET') {
        const versions = packages.get(name);
        if (!versions) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
          return;
        }
        const body = {
          name,
          'dist-tags': distTags.get(name) ?? {},
          versions: Object.fromEntries([...versions].map(([v, s]) => [v, s.manifest])),
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        return;
      }
      if (req.method === 'PUT') {
        if (!req.headers.authorization) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"auth required"}');
          return;
        }
        const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          versions: Record<string, StoredVersion['manifest']>;
          'dist-tags': Record<string, string>;
          _attachments: Record<string, { data: string }>;
        };
        const versions = packages.get(name) ?? new Map<string, StoredVersion>();
        for (const [version, manifest] of Object.entries(doc.versions)) {
          if (versions.has(version)) {
            res.writeHead(409, { 'content-type': 'application/json' }).end('{"error":"version exists"}');
            return;
          }
          const file = `${name.split('/').pop()}-${version}.tgz`;
          const attachment = Object.values(doc._attachments)[0];
          manifest['dist'] = { ...(manifest['dist'] as object), tarball: `${url}/${name}/-/${file}` };
          versions.set(version, { manifest, tarball: Buffer.from(attachment?.data ?? '', 'base64') });
        }
        packages.set(name, versions);
        distTags.set(name, { ...distTags.get(name), ...doc['dist-tags'] });
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
        return;
      }
      res.writeHead(405).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    packages,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
