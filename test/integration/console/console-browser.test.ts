import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteSchema, withConnection } from '../../../src/db/pg.js';
import { expectEventually } from '../../helpers/eventually.js';
import {
  CHROMIUM_PATH,
  hasChromium,
  launchChromium,
  openPage,
  screenshot,
  type PageRecord,
} from '../../helpers/browser.js';
import { useApiHarness } from '../graphql/harness.js';

const FLEET = path.resolve(import.meta.dirname, '../../fixtures/runs/fleet');
const TENANTS = 4;
// Runs, dry runs and SSE streams on a loaded 2-core machine: generous, but every wait ends early.
const RUN_WAIT = { timeoutMs: 30_000, intervalMs: 100 };

const title = hasChromium()
  ? 'the operator console in Chromium'
  : `the operator console in Chromium (SKIPPED: ${CHROMIUM_PATH} is missing; .ci/run installs it with apt-get)`;

describe.skipIf(!hasChromium())(title, () => {
  const api = useApiHarness({ MIGRATIONS_DIR: FLEET });
  const record: PageRecord = { requests: [], consoleErrors: [] };
  let browser: Browser;
  let base = '';
  let operatorToken = '';
  let viewerToken = '';
  let page: Page;

  beforeAll(async () => {
    const port = await api.app.listen(0);
    base = `http://127.0.0.1:${port}`;
    [operatorToken, viewerToken] = await Promise.all([
      api.createToken('OPERATOR'),
      api.createToken('VIEWER'),
    ]);
    // The control plane's own seed tenant (no database, so never a target) is there from the start.
    const before = await api.gql(`{ tenants(filter: { status: [ACTIVE] }) { totalCount } }`);
    const seeded = before.data?.tenants.totalCount as number;
    for (let i = 0; i < TENANTS; i += 1) {
      const created = await api.gql(
        `mutation ($name: String!, $env: TenantEnvironment!) { createTenant(input: { name: $name, environment: $env }) {
          __typename } }`,
        { name: api.tenantName(`web${i}`), env: i % 2 === 0 ? 'PRODUCTION' : 'STAGING' },
      );
      expect(created.data?.createTenant.__typename).toBe('CreateTenantSuccess');
    }
    await expectEventually(async () => {
      const { data } = await api.gql(`{ tenants(filter: { status: [ACTIVE] }) { totalCount } }`);
      expect(data?.tenants.totalCount).toBe(seeded + TENANTS);
    }, RUN_WAIT);
    // Down to 0001, so a run from the page has files to apply.
    const rolledBack = await startRun('startRollback', 'StartRollback', { targetVersion: '0001' });
    await waitForRunEnd(rolledBack);
    browser = await launchChromium();
    ({ page } = await openPage(browser, record));
  });

  afterAll(async () => {
    await browser?.close();
  });

  async function startRun(field: string, inputType: string, input: Record<string, unknown>): Promise<string> {
    const result = await api.gql(
      `mutation ($input: ${inputType}Input!) { ${field}(input: $input) {
        __typename ... on ${inputType}Success { run { id } } ... on Error { message } } }`,
      { input },
    );
    const id = result.data?.[field]?.run?.id as string | undefined;
    if (!id) throw new Error(`${field} failed: ${JSON.stringify(result)}`);
    return id;
  }

  async function waitForRunEnd(id: string): Promise<void> {
    await expectEventually(async () => {
      const { data } = await api.gql(`query ($id: ID!) { migrationRun(id: $id) { status } }`, { id });
      expect(data?.migrationRun.status).toBe('SUCCEEDED');
    }, RUN_WAIT);
  }

  async function signIn(target: Page, token: string): Promise<void> {
    await target.goto(`${base}/`);
    await target.getByTestId('token-input').fill(token);
    await target.getByTestId('login-submit').click();
    await target.getByRole('navigation', { name: 'Main' }).waitFor();
  }

  async function progressOf(target: Page): Promise<{ now: number; max: number }> {
    const bar = target.getByTestId('run-progress');
    expect(await bar.getAttribute('role')).toBe('progressbar');
    return {
      now: Number(await bar.getAttribute('aria-valuenow')),
      max: Number(await bar.getAttribute('aria-valuemax')),
    };
  }

  it('signs in with a pasted token (kept in sessionStorage only) and shows the tenant count the API reports', async () => {
    await signIn(page, operatorToken);
    expect(page.url()).toBe(`${base}/console/`);
    const { data } = await api.gql(`{ tenants { totalCount } }`, {}, operatorToken);
    await expectEventually(async () => {
      expect(await page.getByTestId('tenant-count').textContent()).toBe(String(data?.tenants.totalCount));
    });
    expect(data?.tenants.totalCount).toBeGreaterThanOrEqual(TENANTS);
    const stored = await page.evaluate(() => ({
      session: Object.values(sessionStorage),
      local: Object.keys(localStorage).length,
      cookie: document.cookie,
    }));
    expect(stored).toEqual({ session: [operatorToken], local: 0, cookie: '' });
    expect(record.requests.some((url) => url.includes(operatorToken))).toBe(false);
    await screenshot(page, 'overview');
  });

  it('starts a run from the page after a dry run shows its SQL, and the bar reaches 100 %', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).click();
    await page.getByTestId('start-run').click();
    await page.getByRole('button', { name: 'Dry run' }).click();
    const confirm = page.getByTestId('confirm');
    await expectEventually(async () => expect(await confirm.isEnabled()).toBe(true), RUN_WAIT);
    expect(await page.locator('dialog pre').first().textContent()).toContain(
      'ALTER TABLE items ADD COLUMN price',
    );
    await screenshot(page, 'start-run-dry-run');
    await confirm.click();
    await page.waitForURL(/#\/runs\/.+/);
    await expectEventually(async () => {
      const { now, max } = await progressOf(page);
      expect(max).toBe(TENANTS);
      expect(now).toBe(max);
    }, RUN_WAIT);
    await expectEventually(async () => {
      expect(await page.getByTestId('target-row').count()).toBe(TENANTS);
      expect(await page.getByTestId('target-row').filter({ hasText: 'SUCCEEDED' }).count()).toBe(TENANTS);
    }, RUN_WAIT);
    const runId = decodeURIComponent(page.url().split('#/runs/')[1]!);
    const { data } = await api.gql(
      `query ($id: ID!) { migrationRun(id: $id) { status dryRun targetVersion } }`,
      {
        id: runId,
      },
    );
    expect(data?.migrationRun).toEqual({ status: 'SUCCEEDED', dryRun: false, targetVersion: '0003' });
    await screenshot(page, 'run-finished');
  });

  it('shows a run started elsewhere, with a live bar that reaches its total, without a reload', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).click();
    await page.getByTestId('run-row').first().waitFor();
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    const runId = await startRun('startRollback', 'StartRollback', { targetVersion: '0002' });
    const row = page.locator(`[data-testid="run-row"][data-run-id="${runId}"]`);
    await row.waitFor({ timeout: RUN_WAIT.timeoutMs });
    await row.getByRole('link').click();
    await expectEventually(async () => {
      const { now, max } = await progressOf(page);
      expect(max).toBe(TENANTS);
      expect(now).toBe(max);
    }, RUN_WAIT);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    await waitForRunEnd(runId);
    await screenshot(page, 'run-started-elsewhere');
  });

  it('lists a failed target with its SQLSTATE, file and line as it fails, and offers a retry', async () => {
    // Duplicate names make 0003's unique index fail on this one tenant (SQLSTATE 23505).
    const broken = api.tenantName('web0');
    await withConnection(api.database.url, (client) =>
      client.query(
        `INSERT INTO ${quoteSchema(`tenant_${broken.replace(/-/g, '_')}`)}.items (name) VALUES ('x'), ('x')`,
      ),
    );
    const runId = await startRun('startMigrationRun', 'StartMigrationRun', { targetVersion: '0003' });
    await page.goto(`${base}/console/#/runs/${encodeURIComponent(runId)}`);
    const failed = page.getByTestId('target-row').filter({ hasText: broken });
    await expectEventually(async () => {
      const cells = await failed.locator('td').allTextContents();
      expect(cells[1]).toBe('FAILED');
      expect(cells[6]).toBe('23505');
      expect(cells[7]).toBe('0003_unique_item_names.up.sql');
      // A unique-index failure has no position in the file, so its line stays blank.
      expect(cells[8]).toMatch(/^(\d+)?$/);
      expect(cells[9]).toContain('23505');
    }, RUN_WAIT);
    await expectEventually(async () => {
      const { now, max } = await progressOf(page);
      expect([now, max]).toEqual([TENANTS, TENANTS]);
      expect(await page.getByRole('button', { name: 'Retry failed targets' }).count()).toBe(1);
    }, RUN_WAIT);
    await screenshot(page, 'run-with-failure');
  });

  it('shows a VIEWER no action at all', async () => {
    const viewer = await openPage(browser, record);
    try {
      await signIn(viewer.page, viewerToken);
      const { data } = await api.gql(
        `{ tenants(first: 1) { edges { node { name } } } migrationRuns(first: 1) { edges { node { id } } } }`,
      );
      const tenantName = data?.tenants.edges[0].node.name as string;
      const runId = data?.migrationRuns.edges[0].node.id as string;
      for (const [hash, ready] of [
        ['#/runs', () => viewer.page.getByTestId('run-row').first()],
        [`#/runs/${encodeURIComponent(runId)}`, () => viewer.page.getByTestId('run-progress')],
        [
          `#/tenants/${encodeURIComponent(tenantName)}`,
          () => viewer.page.getByRole('heading', { name: 'Migration history' }),
        ],
        ['#/tenants', () => viewer.page.getByRole('link', { name: tenantName })],
      ] as const) {
        await viewer.page.goto(`${base}/console/${hash}`);
        await ready().waitFor();
        expect(await viewer.page.locator('[data-action]').count(), hash).toBe(0);
        expect(await viewer.page.getByTestId('start-run').count(), hash).toBe(0);
      }
      await screenshot(viewer.page, 'viewer-tenants');
      // The same pages give an operator its actions.
      await page.goto(`${base}/console/#/tenants/${encodeURIComponent(tenantName)}`);
      await page.getByRole('heading', { name: 'Migration history' }).waitFor();
      expect(await page.locator('[data-action]').count()).toBeGreaterThan(0);
    } finally {
      await viewer.context.close();
    }
  });

  it('is readable on a narrow window', async () => {
    const narrow = await openPage(browser, record, { width: 390, height: 800 });
    try {
      await signIn(narrow.page, operatorToken);
      await narrow.page.getByTestId('tenant-count').waitFor();
      // Nothing wider than the window except inside the sideways-scrolling tables.
      const overflow = await narrow.page.evaluate(
        () => document.documentElement.scrollWidth - window.innerWidth,
      );
      expect(overflow).toBeLessThanOrEqual(0);
      await screenshot(narrow.page, 'overview-narrow');
    } finally {
      await narrow.context.close();
    }
  });

  it('sent no request to another origin and logged no console error', () => {
    expect(record.requests.length).toBeGreaterThan(0);
    expect(record.requests.filter((url) => new URL(url).origin !== base)).toEqual([]);
    expect(record.consoleErrors).toEqual([]);
  });
});
