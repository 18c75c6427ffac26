// Run views: the runs list (refreshed while open), a run's page fed live by migrationRunEvents
// over SSE, and the start-run dialog (dry run first, its planned SQL shown, then the real run).
import { ApiError, gql, isAbort, subscribe, unwrap } from './api.js';
import { confirmByName, openDialog } from './dialogs.js';
import { alertBox, badge, formatCount, formatTime, h, replace, scrollTable } from './dom.js';
import { tenantHref } from './fleet.js';

const PAGE_SIZE = 25;
const TARGET_PAGE_SIZE = 100;
// The API has no "runs changed" stream, so the list re-reads its page this often while shown.
const RUNS_REFRESH_MS = 2000;
// After a stream breaks (network, server restart), wait this long before subscribing again.
const RESUBSCRIBE_MS = 1000;
const ENDED = new Set(['SUCCEEDED', 'FAILED', 'HALTED', 'CANCELLED']);
const ENVIRONMENTS = ['PRODUCTION', 'STAGING', 'DEVELOPMENT'];
const PROGRESS = 'progress { total pending running succeeded failed skipped cancelled }';
const TARGET = `id status fromVersion toVersion attempts durationMs error errorCode canary startedAt finishedAt
  tenant { name }`;

/** The runs list, newest first; new runs and their progress appear without a reload. */
export async function renderRuns(view) {
  const { main, signal, canOperate } = view;
  const cursors = [null];
  const body = h('div');
  const header = h('div', { class: 'title-row' }, h('h1', null, 'Runs'));
  if (canOperate) {
    header.append(
      h(
        'button',
        { type: 'button', testid: 'start-run', 'data-action': 'start-run', onclick: () => startRunDialog() },
        'Start a run…',
      ),
    );
  }
  replace(main, header, body);

  let timer = null;
  signal.addEventListener('abort', () => clearTimeout(timer));
  async function load() {
    clearTimeout(timer);
    const { migrationRuns } = await gql(
      `query Runs($first: Int!, $after: String) { migrationRuns(first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { node { id kind status targetVersion dryRun requestedBy createdAt ${PROGRESS} } } } }`,
      { first: PAGE_SIZE, after: cursors.at(-1) },
      { signal },
    );
    if (signal.aborted) return;
    const previous = h('button', { type: 'button', disabled: cursors.length === 1 }, 'Newer runs');
    const next = h('button', { type: 'button', disabled: !migrationRuns.pageInfo.hasNextPage }, 'Older runs');
    previous.addEventListener('click', () => {
      cursors.pop();
      void refresh();
    });
    next.addEventListener('click', () => {
      cursors.push(migrationRuns.pageInfo.endCursor);
      void refresh();
    });
    const keepFocus =
      document.activeElement && body.contains(document.activeElement)
        ? document.activeElement.textContent
        : null;
    replace(
      body,
      h('p', null, `${formatCount(migrationRuns.totalCount)} run(s)`),
      migrationRuns.edges.length === 0
        ? h('p', null, 'No runs yet.')
        : scrollTable(
            'Runs',
            ['Run', 'Kind', 'Status', 'Version', 'Progress', 'Requested by', 'Created'],
            migrationRuns.edges.map(({ node }) =>
              h(
                'tr',
                { testid: 'run-row', 'data-run-id': node.id },
                h('td', null, h('a', { href: runHref(node.id) }, runLabel(node))),
                h('td', null, node.kind, node.dryRun ? ' (dry run)' : ''),
                h('td', null, badge(node.status)),
                h('td', null, node.targetVersion ?? '—'),
                h('td', null, progressMeter(node.progress)),
                h('td', null, node.requestedBy ?? '—'),
                h('td', null, formatTime(node.createdAt)),
              ),
            ),
          ),
      h('div', { class: 'pager' }, previous, next),
    );
    // A refresh must not throw keyboard users back to the top.
    if (keepFocus)
      [...body.querySelectorAll('a, button')].find((el) => el.textContent === keepFocus)?.focus();
    timer = setTimeout(() => void refresh(), RUNS_REFRESH_MS);
  }
  async function refresh() {
    try {
      await load();
    } catch (error) {
      if (signal.aborted || isAbort(error)) return;
      replace(body, alertBox(`Could not refresh the runs: ${error.message}`));
      timer = setTimeout(() => void refresh(), RUNS_REFRESH_MS);
    }
  }
  await load();
}

/** A run's page: live progress bar, counts per status, targets with their errors, and actions. */
export async function renderRun(view) {
  const { main, signal, params, canOperate, isAdmin } = view;
  const [id] = params;
  const run = await readRun(id, null, signal);
  if (!run) {
    replace(main, h('h1', null, 'Run not found'), alertBox(`No run has the id ${id}.`));
    return;
  }
  const state = { run, filter: '' };
  const fill = h('span', { class: 'progress-fill' });
  const bar = h(
    'div',
    {
      class: 'progress',
      role: 'progressbar',
      testid: 'run-progress',
      'aria-label': 'Targets finished',
      'aria-valuemin': '0',
    },
    fill,
  );
  const barText = h('p', { class: 'progress-text' });
  const counts = h('dl', { class: 'counts' });
  const statusFacts = h('dl', { class: 'facts' });
  const actions = h('div', { class: 'actions' });
  const notice = h('div', { 'aria-live': 'polite' });
  const targetsBody = h('tbody');
  const more = h('div', { class: 'pager' });
  const filter = h(
    'select',
    { id: 'target-status' },
    ['', 'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED'].map((s) =>
      h('option', { value: s }, s || 'Any'),
    ),
  );
  filter.addEventListener('change', async () => {
    state.filter = filter.value;
    await reload();
  });
  const rows = new Map();

  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/runs' }, 'Runs'), ' / ', runLabel(run)),
    h('h1', null, `${run.kind} run ${runLabel(run)}${run.dryRun ? ' (dry run)' : ''}`),
    statusFacts,
    h(
      'section',
      { 'aria-labelledby': 'progress-heading' },
      h('h2', { id: 'progress-heading' }, 'Progress'),
      bar,
      barText,
      counts,
    ),
    actions,
    notice,
    h(
      'section',
      { 'aria-labelledby': 'targets-heading' },
      h('h2', { id: 'targets-heading' }, 'Targets'),
      h('div', { class: 'filters' }, h('div', null, h('label', { for: 'target-status' }, 'Status'), filter)),
      h(
        'div',
        { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': 'Targets' },
        h(
          'table',
          null,
          h('caption', { class: 'visually-hidden' }, 'Targets'),
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Tenant', 'Status', 'From', 'To', 'Attempts', 'Took', 'SQLSTATE', 'File', 'Line', 'Error'].map(
                (t) => h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          targetsBody,
        ),
      ),
      more,
    ),
  );
  showRun(state.run);
  showTargets(state.run.targets);
  void follow();

  function showRun(current) {
    const { progress } = current;
    const done = progress.succeeded + progress.failed + progress.skipped + progress.cancelled;
    bar.setAttribute('aria-valuemax', String(progress.total));
    bar.setAttribute('aria-valuenow', String(done));
    const percent = progress.total === 0 ? 100 : Math.floor((done / progress.total) * 100);
    bar.setAttribute('aria-valuetext', `${done} of ${progress.total} targets finished (${percent} %)`);
    fill.style.width = `${percent}%`;
    fill.className = `progress-fill ${progress.failed > 0 ? 'has-failures' : ''}`;
    replace(
      barText,
      `${formatCount(done)} of ${formatCount(progress.total)} targets finished (${percent} %)`,
    );
    replace(
      counts,
      ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'].map((key) =>
        h(
          'div',
          { class: `count count-${key}` },
          h('dt', null, key[0].toUpperCase() + key.slice(1)),
          h('dd', null, formatCount(progress[key])),
        ),
      ),
    );
    replace(
      statusFacts,
      fact('Status', badge(current.status)),
      fact('Target version', current.targetVersion ?? '—'),
      fact('Concurrency', current.concurrency),
      current.canarySize ? fact('Canaries', current.canarySize) : null,
      current.maxFailures !== null && current.maxFailures !== undefined
        ? fact('Halts after failures', current.maxFailures)
        : null,
      fact('Requested by', current.requestedBy ?? '—'),
      fact('Started', formatTime(current.startedAt)),
      fact('Finished', formatTime(current.finishedAt)),
    );
    replace(actions, actionButtons(current));
  }

  function actionButtons(current) {
    if (!canOperate) return [];
    const buttons = [];
    if (!ENDED.has(current.status)) {
      buttons.push(
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => cancel() }, 'Cancel run'),
      );
    }
    const { failed, cancelled, skipped } = current.progress;
    if (ENDED.has(current.status) && failed + cancelled + skipped > 0) {
      buttons.push(
        h(
          'button',
          { type: 'button', 'data-action': 'retry', onclick: () => retry() },
          'Retry failed targets',
        ),
      );
    }
    if (isAdmin && ENDED.has(current.status) && current.kind === 'MIGRATE' && !current.dryRun) {
      buttons.push(
        h(
          'button',
          { type: 'button', class: 'danger', 'data-action': 'rollback', onclick: () => rollback() },
          'Roll back these tenants…',
        ),
      );
    }
    return buttons;
  }

  function showTargets(connection) {
    rows.clear();
    targetsBody.replaceChildren();
    for (const { node } of connection.edges) upsertTarget(node);
    replace(
      more,
      connection.totalCount > connection.edges.length
        ? h(
            'p',
            null,
            `Showing ${connection.edges.length} of ${formatCount(connection.totalCount)} targets; filter by status to see others.`,
          )
        : null,
    );
  }

  function upsertTarget(target) {
    if (state.filter && target.status !== state.filter) {
      rows.get(target.id)?.remove();
      rows.delete(target.id);
      return;
    }
    const row = targetRow(target);
    const existing = rows.get(target.id);
    if (existing) existing.replaceWith(row);
    else if (rows.size < TARGET_PAGE_SIZE) targetsBody.append(row);
    else return;
    rows.set(target.id, row);
  }

  async function reload() {
    const fresh = await readRun(id, state.filter || null, signal);
    if (!fresh || signal.aborted) return;
    state.run = fresh;
    showRun(fresh);
    showTargets(fresh.targets);
  }

  // The subscription sends a SNAPSHOT, then every event; it ends after RUN_FINISHED. If it breaks
  // first, the page re-reads the run (the database is the record) and subscribes again.
  async function follow() {
    while (!signal.aborted && !ENDED.has(state.run.status)) {
      let finished = false;
      try {
        await subscribe(
          `subscription RunEvents($id: ID!) { migrationRunEvents(runId: $id) {
            type ${PROGRESS} run { id kind status targetVersion dryRun concurrency canarySize maxFailures requestedBy startedAt finishedAt }
            target { ${TARGET} } } }`,
          { id },
          ({ migrationRunEvents: event }) => {
            state.run = { ...state.run, ...event.run, progress: event.progress };
            showRun(state.run);
            if (event.target) upsertTarget(event.target);
            if (event.type === 'RUN_FINISHED') finished = true;
          },
          { signal },
        );
      } catch (error) {
        if (signal.aborted || isAbort(error)) return;
        replace(notice, alertBox(`Live updates paused (${error.message}); retrying.`));
        if (error instanceof ApiError && error.code === 'NOT_FOUND') return;
        await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_MS));
      }
      if (signal.aborted) return;
      // Targets that end without an event of their own (SKIPPED, CANCELLED) show after a re-read.
      await reload().catch((error) => {
        if (!isAbort(error)) replace(notice, alertBox(error.message));
      });
      if (finished) return;
    }
  }

  async function cancel() {
    await act(async () => {
      const { cancelMigrationRun } = await gql(
        `mutation Cancel($id: ID!) { cancelMigrationRun(input: { id: $id }) {
          __typename ... on CancelMigrationRunSuccess { run { id } } ... on Error { code message } } }`,
        { id },
      );
      unwrap(cancelMigrationRun);
      replace(notice, h('p', null, 'Cancel requested: waiting targets will not start; running ones finish.'));
      await reload();
    });
  }

  async function retry() {
    await act(async () => {
      const { retryMigrationRun } = await gql(
        `mutation Retry($id: ID!) { retryMigrationRun(input: { id: $id }) {
          __typename ... on RetryMigrationRunSuccess { run { id } } ... on Error { code message } } }`,
        { id },
      );
      unwrap(retryMigrationRun);
      replace(notice, h('p', null, 'Failed, cancelled and skipped targets are queued again.'));
      await reload();
      void follow();
    });
  }

  async function rollback() {
    const { migrations } = await gql('query Versions { migrations { version } }', {}, { signal });
    const choices = migrations
      .map((m) => m.version)
      .filter(
        (v) =>
          !state.run.targetVersion ||
          v.localeCompare(state.run.targetVersion, undefined, { numeric: true }) < 0,
      )
      .reverse();
    if (choices.length === 0) {
      replace(notice, alertBox('There is no lower version to roll back to.'));
      return;
    }
    const version = h(
      'select',
      { id: 'rollback-version' },
      choices.map((v) => h('option', { value: v }, v)),
    );
    const answer = await confirmByName({
      title: `Roll back the tenants of run ${runLabel(state.run)}`,
      description:
        'Starts a ROLLBACK run over every tenant this run targeted, applying down files newest first.',
      name: runLabel(state.run),
      actionLabel: 'Roll back',
      fields: [
        {
          key: 'targetVersion',
          element: h('div', null, h('label', { for: 'rollback-version' }, 'Roll back to version'), version),
          value: () => version.value,
        },
      ],
    });
    if (!answer) return;
    await act(async () => {
      const ids = await tenantIdsOf(id, signal);
      const { startRollback } = await gql(
        `mutation Rollback($input: StartRollbackInput!) { startRollback(input: $input) {
          __typename ... on StartRollbackSuccess { run { id } } ... on Error { code message } } }`,
        {
          input: {
            targetVersion: answer.targetVersion,
            tenants: { ids, status: ['ACTIVE', 'INACTIVE', 'SUSPENDED', 'PENDING'] },
          },
        },
      );
      location.hash = runHref(unwrap(startRollback).run.id);
    });
  }

  async function act(fn) {
    try {
      await fn();
    } catch (error) {
      if (!isAbort(error)) replace(notice, alertBox(error.message));
    }
  }
}

async function readRun(id, status, signal) {
  const { migrationRun } = await gql(
    `query Run($id: ID!, $first: Int!, $status: [TargetStatus!]) { migrationRun(id: $id) {
      id kind status targetVersion dryRun concurrency canarySize maxFailures requestedBy createdAt startedAt finishedAt
      ${PROGRESS}
      targets(first: $first, status: $status) { totalCount edges { node { ${TARGET} } } } } }`,
    { id, first: TARGET_PAGE_SIZE, status: status ? [status] : null },
    { signal },
  );
  return migrationRun;
}

async function tenantIdsOf(runId, signal) {
  const ids = [];
  let after = null;
  for (;;) {
    const { migrationRun } = await gql(
      `query RunTenants($id: ID!, $after: String) { migrationRun(id: $id) {
        targets(first: 100, after: $after) { pageInfo { hasNextPage endCursor } edges { node { tenant { id } } } } } }`,
      { id: runId, after },
      { signal },
    );
    for (const { node } of migrationRun.targets.edges) ids.push(node.tenant.id);
    if (!migrationRun.targets.pageInfo.hasNextPage) return ids;
    after = migrationRun.targets.pageInfo.endCursor;
  }
}

function targetRow(target) {
  const where = locateError(target.error);
  return h(
    'tr',
    {
      testid: 'target-row',
      'data-target-id': target.id,
      class: target.status === 'FAILED' ? 'failed' : null,
    },
    h(
      'td',
      null,
      h('a', { href: tenantHref(target.tenant.name) }, target.tenant.name),
      target.canary ? ' (canary)' : '',
    ),
    h('td', null, badge(target.status)),
    h('td', null, target.fromVersion ?? '—'),
    h('td', null, target.toVersion ?? '—'),
    h('td', { class: 'num' }, target.attempts),
    h('td', { class: 'num' }, target.durationMs === null ? '—' : `${target.durationMs} ms`),
    h('td', null, target.errorCode ? h('code', null, target.errorCode) : ''),
    h('td', null, where.file ?? ''),
    h('td', { class: 'num' }, where.line ?? ''),
    h('td', { class: 'error-text' }, target.error ?? ''),
  );
}

// The engine's message reads "Migration <file> failed on schema <schema> at line <n>: …".
function locateError(error) {
  if (!error) return {};
  const file = /Migration (\S+) failed/.exec(error)?.[1];
  const line = /at line (\d+)/.exec(error)?.[1];
  return { file, line };
}

function progressMeter(progress) {
  const done = progress.succeeded + progress.failed + progress.skipped + progress.cancelled;
  return h(
    'span',
    { class: 'meter' },
    h('progress', {
      max: String(Math.max(progress.total, 1)),
      value: String(progress.total === 0 ? 1 : done),
      'aria-label': 'Targets finished',
    }),
    ` ${done}/${progress.total}`,
    progress.failed > 0 ? h('span', { class: 'error-text' }, ` (${progress.failed} failed)`) : null,
  );
}

function fact(term, value) {
  return h('div', null, h('dt', null, term), h('dd', null, value));
}

/** A short, stable name for a run: its kind's first letter is not enough, so the id's first 8 hex digits. */
export function runLabel(run) {
  let raw = run.id;
  try {
    raw = atob(run.id);
  } catch {
    // Not base64: use the id as it is.
  }
  const uuid = raw.includes(':') ? raw.slice(raw.indexOf(':') + 1) : raw;
  return uuid.slice(0, 8);
}

function runHref(id) {
  return `#/runs/${encodeURIComponent(id)}`;
}

/**
 * Start a run: the operator chooses version, tenants and limits, then a dry run plans every target
 * and its SQL is shown; only then can the real run start with the same input.
 */
async function startRunDialog() {
  const { migrations } = await gql('query Versions { migrations { version name } }');
  const runId = await openDialog('Start a migration run', (close) => {
    const version = h(
      'select',
      { id: 'run-version' },
      [...migrations]
        .reverse()
        .map((m, i) => h('option', { value: m.version, selected: i === 0 }, `${m.version} ${m.name}`)),
    );
    const envs = ENVIRONMENTS.map((env) =>
      h('input', { id: `run-env-${env}`, type: 'checkbox', value: env }),
    );
    const concurrency = h('input', { id: 'run-concurrency', type: 'number', min: '1', inputmode: 'numeric' });
    const canary = h('input', { id: 'run-canary', type: 'number', min: '1', inputmode: 'numeric' });
    const maxFailures = h('input', {
      id: 'run-max-failures',
      type: 'number',
      min: '1',
      inputmode: 'numeric',
    });
    const plan = h('div', { class: 'plan', 'aria-live': 'polite' });
    const dryRunButton = h('button', { type: 'button' }, 'Dry run');
    const confirm = h('button', { type: 'submit', testid: 'confirm', disabled: true }, 'Start run');
    let planned = null;

    const input = () => {
      const value = { targetVersion: version.value };
      const chosen = envs.filter((box) => box.checked).map((box) => box.value);
      if (chosen.length > 0) value.tenants = { environment: chosen };
      for (const [key, field] of [
        ['concurrency', concurrency],
        ['canarySize', canary],
        ['maxFailures', maxFailures],
      ]) {
        if (field.value !== '') value[key] = Number(field.value);
      }
      return value;
    };
    const form = h(
      'form',
      { method: 'dialog', class: 'start-run' },
      h('div', null, h('label', { for: 'run-version' }, 'Target version'), version),
      h(
        'fieldset',
        null,
        h('legend', null, 'Environments (none: every ACTIVE tenant)'),
        envs.map((box) => h('div', { class: 'check' }, box, h('label', { for: box.id }, box.value))),
      ),
      h(
        'div',
        { class: 'row' },
        h('div', null, h('label', { for: 'run-concurrency' }, 'Concurrency'), concurrency),
        h('div', null, h('label', { for: 'run-canary' }, 'Canaries'), canary),
        h('div', null, h('label', { for: 'run-max-failures' }, 'Halt after failures'), maxFailures),
      ),
      plan,
      h(
        'div',
        { class: 'dialog-actions' },
        h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'),
        dryRunButton,
        confirm,
      ),
    );
    // Any change after a dry run asks for a new one: the SQL shown must be the SQL that runs.
    form.addEventListener('input', () => {
      planned = null;
      confirm.disabled = true;
    });
    dryRunButton.addEventListener('click', async () => {
      dryRunButton.disabled = true;
      confirm.disabled = true;
      replace(plan, h('p', null, 'Planning every target (dry run)…'));
      try {
        const value = input();
        const result = await dryRun(value);
        planned = value;
        replace(plan, result.view);
        confirm.disabled = result.total === 0;
      } catch (error) {
        replace(plan, alertBox(error.message));
      } finally {
        dryRunButton.disabled = false;
      }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!planned) return;
      confirm.disabled = true;
      try {
        const { startMigrationRun } = await gql(
          `mutation Start($input: StartMigrationRunInput!) { startMigrationRun(input: $input) {
            __typename ... on StartMigrationRunSuccess { run { id } } ... on Error { code message } } }`,
          { input: planned },
        );
        close(unwrap(startMigrationRun).run.id);
      } catch (error) {
        confirm.disabled = false;
        replace(plan, alertBox(error.message));
      }
    });
    return form;
  });
  if (runId) location.hash = runHref(runId);
}

// Starts the dry run, waits for it over SSE, then shows each distinct planned SQL (schema names
// replaced) once with the tenants it would run on.
async function dryRun(input) {
  const { startMigrationRun } = await gql(
    `mutation DryRun($input: StartMigrationRunInput!) { startMigrationRun(input: $input) {
      __typename ... on StartMigrationRunSuccess { run { id } } ... on Error { code message } } }`,
    { input: { ...input, dryRun: true } },
  );
  const { id } = unwrap(startMigrationRun).run;
  await subscribe(
    `subscription DryRunEvents($id: ID!) { migrationRunEvents(runId: $id) { type } }`,
    { id },
    () => undefined,
  );
  const { migrationRun } = await gql(
    `query Planned($id: ID!) { migrationRun(id: $id) { status ${PROGRESS}
      targets(first: 100) { totalCount edges { node { plannedSql error tenant { name databases { schemaName } } } } } } }`,
    { id },
  );
  const groups = new Map();
  const failures = [];
  for (const { node } of migrationRun.targets.edges) {
    if (node.error) failures.push(node);
    // The same files on every tenant differ only by schema name: show them once.
    const schema = node.tenant.databases[0]?.schemaName;
    const raw = node.plannedSql?.trim() || '-- nothing to apply';
    const sql = schema ? raw.split(schema).join('<tenant schema>') : raw;
    groups.set(sql, [...(groups.get(sql) ?? []), node.tenant.name]);
  }
  const total = migrationRun.progress.total;
  return {
    total,
    view: [
      h('h3', null, `Planned SQL for ${formatCount(total)} tenant(s)`),
      total === 0 ? h('p', null, 'No tenant matches; nothing would run.') : null,
      failures.length > 0
        ? alertBox(
            `${failures.length} tenant(s) could not be planned: ${failures.map((f) => `${f.tenant.name}: ${f.error}`).join('; ')}`,
          )
        : null,
      [...groups].map(([sql, tenants]) =>
        h(
          'details',
          { open: groups.size === 1 },
          h(
            'summary',
            null,
            `${tenants.length} tenant(s): ${tenants.slice(0, 3).join(', ')}${tenants.length > 3 ? ', …' : ''}`,
          ),
          h('pre', { tabindex: '0' }, h('code', null, sql)),
        ),
      ),
      migrationRun.targets.totalCount > migrationRun.targets.edges.length
        ? h(
            'p',
            null,
            `Showing the plans of ${migrationRun.targets.edges.length} of ${formatCount(total)} targets.`,
          )
        : null,
    ],
  };
}
