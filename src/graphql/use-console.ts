import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'graphql-yoga';

/** Where the console's static files live: src/console in development, dist/console once built. */
export const CONSOLE_ASSET_DIR = fileURLToPath(new URL('../console/', import.meta.url));
/** The console's address; `/` redirects here. */
export const CONSOLE_PATH = '/console';

// Everything the page may load comes from this origin; no inline script or style, no plugins, no
// framing, no form posts elsewhere. Trusted Types: the console never assigns HTML strings.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// Only plain names with a known extension are served, so nothing else in the directory leaks.
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(html|js|css|svg)$/;

interface Asset {
  // Every console file is text.
  readonly body: string;
  readonly contentType: string;
  readonly etag: string;
}

/**
 * Serves the operator console at /console (static files read once, at creation) and redirects `/`
 * there. Every response carries the CSP; files are revalidated by ETag, so a deploy is seen at once.
 */
export function useConsole(assetDir: string = CONSOLE_ASSET_DIR): Plugin {
  const assets = loadAssets(assetDir);
  const index = assets.get('index.html');
  if (!index) throw new Error(`console assets missing: no index.html in ${assetDir}`);

  return {
    onRequest({ url, request, endResponse, fetchAPI }) {
      const { pathname } = url;
      if (pathname === '/') {
        endResponse(
          new fetchAPI.Response(null, {
            status: 302,
            headers: { location: `${CONSOLE_PATH}/`, 'cache-control': 'no-store' },
          }),
        );
        return;
      }
      if (pathname !== CONSOLE_PATH && !pathname.startsWith(`${CONSOLE_PATH}/`)) return;
      const name = pathname === CONSOLE_PATH ? '' : pathname.slice(CONSOLE_PATH.length + 1);
      const asset = name === '' ? index : assets.get(name);
      const headers: Record<string, string> = {
        'content-security-policy': CONTENT_SECURITY_POLICY,
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-resource-policy': 'same-origin',
      };
      if (!asset) {
        endResponse(
          new fetchAPI.Response('not found\n', {
            status: 404,
            headers: { ...headers, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
          }),
        );
        return;
      }
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        endResponse(
          new fetchAPI.Response('method not allowed\n', {
            status: 405,
            headers: { ...headers, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' },
          }),
        );
        return;
      }
      // no-cache: the browser keeps the file but asks each time; an unchanged file costs a 304.
      Object.assign(headers, { 'cache-control': 'no-cache', etag: asset.etag });
      if (request.headers.get('if-none-match') === asset.etag) {
        endResponse(new fetchAPI.Response(null, { status: 304, headers }));
        return;
      }
      headers['content-type'] = asset.contentType;
      endResponse(
        new fetchAPI.Response(request.method === 'HEAD' ? null : asset.body, { status: 200, headers }),
      );
    },
  };
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    if (!ASSET_NAME.test(name)) continue;
    const body = readFileSync(path.join(dir, name), 'utf8');
    const contentType = CONTENT_TYPES[path.extname(name)]!;
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, contentType, etag });
  }
  return assets;
}
