import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONSOLE_ASSET_DIR } from '../../../src/graphql/use-console.js';
import { useApiHarness } from '../graphql/harness.js';

describe('the console over HTTP', () => {
  const api = useApiHarness();
  const get = (url: string, init: RequestInit = {}) => api.app.yoga!.fetch(`http://localhost${url}`, init);

  it('redirects / to the console', async () => {
    const response = await get('/', { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/console/');
  });

  it('serves the page with a strict Content-Security-Policy and no inline script or style', async () => {
    for (const url of ['/console', '/console/']) {
      const response = await get(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const html = await response.text();
      expect(html).toContain('<script type="module" src="/console/app.js">');
      expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
      expect(html).not.toMatch(/\sstyle=|<style/);
    }
  });

  it('serves every asset with its content type and revalidation by ETag', async () => {
    const expected: Record<string, string> = {
      '.js': 'text/javascript; charset=utf-8',
      '.css': 'text/css; charset=utf-8',
      '.svg': 'image/svg+xml',
    };
    const names = readdirSync(CONSOLE_ASSET_DIR).filter((name) => path.extname(name) in expected);
    expect(names).toEqual(expect.arrayContaining(['app.js', 'api.js', 'console.css', 'icon.svg']));
    for (const name of names) {
      const response = await get(`/console/${name}`);
      expect(response.status, name).toBe(200);
      expect(response.headers.get('content-type'), name).toBe(expected[path.extname(name)]);
      expect(response.headers.get('cache-control'), name).toBe('no-cache');
      expect(await response.text(), name).toBe(readFileSync(path.join(CONSOLE_ASSET_DIR, name), 'utf8'));
      const etag = response.headers.get('etag');
      expect(etag, name).toMatch(/^"[\w-]+"$/);
      const again = await get(`/console/${name}`, { headers: { 'if-none-match': etag! } });
      expect(again.status, name).toBe(304);
    }
  });

  it('answers 404 for anything else under /console, including path tricks', async () => {
    for (const url of [
      '/console/nope.js',
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/.env',
    ]) {
      const response = await get(url);
      expect(response.status, url).toBe(404);
      expect(await response.text(), url).not.toContain('tenant-control-plane');
    }
  });

  it('refuses writes to console files', async () => {
    const response = await get('/console/app.js', { method: 'PUT', body: 'x' });
    expect(response.status).toBe(405);
  });

  it('references no other origin from its files', () => {
    for (const name of readdirSync(CONSOLE_ASSET_DIR)) {
      if (!/\.(html|js|css|svg)$/.test(name)) continue;
      const text = readFileSync(path.join(CONSOLE_ASSET_DIR, name), 'utf8');
      // The SVG namespace is an identifier, not a request.
      const urls = (text.match(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'")]*/gi) ?? []).filter(
        (url) => url !== 'http://www.w3.org/2000/svg',
      );
      expect(urls, name).toEqual([]);
    }
  });
});
