// Fleet views: the overview, the tenants table and a tenant's page.
import { gql, unwrap } from './api.js';
import { confirmByName } from './dialogs.js';
import { alertBox, badge, barChart, formatCount, formatTime, h, replace, scrollTable } from './dom.js';

const TENANT_STATUSES = ['ACTIVE', 'PENDING', 'INACTIVE', 'SUSPENDED'];
const ENVIRONMENTS = ['PRODUCTION', 'STAGING', 'DEVELOPMENT'];
const PAGE_SIZE = 25;
// The API has no per-version count, so the version chart pages through tenants (100 a page, the
// API's maximum) up to this many; beyond it the chart says it covers only the first ones.
// TODO(issue 14): replace with a server-side aggregate once the API offers one.
const VERSION_SCAN_LIMIT = 2000;

/** Fleet overview: tenants by status, environment and version; servers and drift when deployed. */
export async function renderOverview(view) {
  const { main, signal, features } = view;
  const counts = [
    'total: tenants(first: 1) { totalCount }',
    ...TENANT_STATUSES.map((s) => `s_${s}: tenants(first: 1, filter: { status: [${s}] }) { totalCount }`),
    ...ENVIRONMENTS.map((e) => `e_${e}: tenants(first: 1, filter: { environment: [${e}] }) { totalCount }`),
    'active: migrationRuns(first: 1, status: [QUEUED, RUNNING]) { totalCount }',
    'migrations { version }',
  ];
  const data = await gql(`query Overview { ${counts.join('\n')} }`, {}, { signal });
  const versions = await scanVersions(signal);
  const latest = data.migrations.at(-1)?.version ?? null;

  const sections = [
    h('h1', null, 'Fleet overview'),
    h(
      'dl',
      { class: 'stats' },
      h(
        'div',
        null,
        h('dt', null, 'Tenants'),
        h('dd', { testid: 'tenant-count' }, formatCount(data.total.totalCount)),
      ),
      h('div', null, h('dt', null, 'Latest catalog version'), h('dd', null, latest ?? '—')),
      h(
        'div',
        null,
        h('dt', null, 'Runs in progress'),
        h('dd', null, h('a', { href: '#/runs' }, formatCount(data.active.totalCount))),
      ),
    ),
    h(
      'div',
      { class: 'charts' },
      barChart(
        'Tenants by status',
        TENANT_STATUSES.map((s) => ({ label: s, count: data[`s_${s}`].totalCount })),
      ),
      barChart(
        'Tenants by environment',
        ENVIRONMENTS.map((e) => ({ label: e, count: data[`e_${e}`].totalCount })),
      ),
      barChart(
        versions.complete
          ? 'Tenants by version'
          : `Tenants by version (first ${formatCount(versions.scanned)} of ${formatCount(data.total.totalCount)})`,
        versions.rows.map((row) => ({
          ...row,
          label: row.label === latest ? `${row.label} (latest)` : row.label,
        })),
      ),
    ),
  ];
  if (features.servers) sections.push(await serversSection(signal));
  if (features.drift) sections.push(await driftSection(signal));
  if (!signal.aborted) replace(main, sections);
}

async function scanVersions(signal) {
  const byVersion = new Map();
  let after = null;
  let scanned = 0;
  for (;;) {
    const { tenants } = await gql(
      `query TenantVersions($after: String) { tenants(first: 100, after: $after) {
        edges { node { schemaVersion } } pageInfo { hasNextPage endCursor } } }`,
      { after },
      { signal },
    );
    for (const { node } of tenants.edges) {
      const key = node.schemaVersion ?? 'none';
      byVersion.set(key, (byVersion.get(key) ?? 0) + 1);
    }
    scanned += tenants.edges.length;
    if (!tenants.pageInfo.hasNextPage) break;
    if (scanned >= VERSION_SCAN_LIMIT) return { rows: sortVersions(byVersion), scanned, complete: false };
    after = tenants.pageInfo.endCursor;
  }
  return { rows: sortVersions(byVersion), scanned, complete: true };
}

function sortVersions(byVersion) {
  return [...byVersion]
    .map(([label, count]) => ({ label, count }))
    .sort((a, b) =>
      a.label === 'none'
        ? -1
        : b.label === 'none'
          ? 1
          : a.label.localeCompare(b.label, undefined, { numeric: true }),
    );
}

// Extension point: shown only when the API has database servers (issue "database servers").
async function serversSection(signal) {
  const { databaseServers } = await gql(
    'query Servers { databaseServers { id name host port tenantCount maxConcurrentMigrations acceptingTenants } }',
    {},
    { signal },
  );
  return h(
    'section',
    { 'aria-labelledby': 'servers-heading' },
    h('h2', { id: 'servers-heading' }, 'Database servers'),
    barChart(
      'Tenants per server',
      databaseServers.map((s) => ({ label: s.name, count: s.tenantCount })),
    ),
    scrollTable(
      'Database servers',
      ['Name', 'Address', 'Tenants', 'Migration budget', 'Accepting tenants'],
      databaseServers.map((s) =>
        h(
          'tr',
          null,
          h('td', null, s.name),
          h('td', null, `${s.host}:${s.port}`),
          h('td', { class: 'num' }, formatCount(s.tenantCount)),
          h('td', { class: 'num' }, s.maxConcurrentMigrations),
          h('td', null, s.acceptingTenants ? 'yes' : 'no'),
        ),
      ),
    ),
  );
}

// Extension point: shown only when the API has fingerprints (issue "drift").
async function driftSection(signal) {
  const { schemaDrift } = await gql(
    'query Drift { schemaDrift { hash version expected tenantCount tenants(first: 5) { name } } }',
    {},
    { signal },
  );
  const outliers = schemaDrift.filter((cluster) => !cluster.expected);
  return h(
    'section',
    { 'aria-labelledby': 'drift-heading' },
    h('h2', { id: 'drift-heading' }, 'Schema drift'),
    h(
      'p',
      null,
      outliers.length === 0
        ? 'Every fingerprinted tenant matches its version.'
        : `${outliers.length} cluster(s) differ from their version.`,
    ),
    scrollTable(
      'Drift clusters',
      ['Fingerprint', 'Version', 'Expected', 'Tenants', 'Some of them'],
      schemaDrift.map((c) =>
        h(
          'tr',
          { class: c.expected ? null : 'outlier' },
          h('td', null, h('code', null, c.hash.slice(0, 12))),
          h('td', null, c.version ?? '—'),
          h('td', null, c.expected ? 'yes' : 'no (drift)'),
          h('td', { class: 'num' }, formatCount(c.tenantCount)),
          h(
            'td',
            null,
            c.tenants.map((t, i) => [i > 0 ? ', ' : '', h('a', { href: tenantHref(t.name) }, t.name)]),
          ),
        ),
      ),
    ),
  );
}

// The table's filter and position survive visits to a tenant's page.
const tableState = { nameContains: '', status: '', environment: '', cursors: [null] };

/** The tenants table: filter by name, status and environment; paged. */
export async function renderTenants(view) {
  const { main, signal, features } = view;
  const body = h('div', { 'aria-live': 'polite' });
  const nameInput = h('input', {
    id: 'filter-name',
    type: 'search',
    value: tableState.nameContains,
    autocomplete: 'off',
  });
  const statusSelect = select('filter-status', ['', ...TENANT_STATUSES], tableState.status);
  const envSelect = select('filter-environment', ['', ...ENVIRONMENTS], tableState.environment);
  const form = h(
    'form',
    { class: 'filters', role: 'search' },
    h('div', null, h('label', { for: 'filter-name' }, 'Name contains'), nameInput),
    h('div', null, h('label', { for: 'filter-status' }, 'Status'), statusSelect),
    h('div', null, h('label', { for: 'filter-environment' }, 'Environment'), envSelect),
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    Object.assign(tableState, {
      nameContains: nameInput.value.trim(),
      status: statusSelect.value,
      environment: envSelect.value,
      cursors: [null],
    });
    void load();
  });
  replace(main, h('h1', null, 'Tenants'), form, body);

  const serverField = features.servers ? 'server { name }' : '';
  const driftField = features.drift ? 'fingerprint { matchesExpected }' : '';
  async function load() {
    const filter = {};
    if (tableState.nameContains) filter.nameContains = tableState.nameContains;
    if (tableState.status) filter.status = [tableState.status];
    if (tableState.environment) filter.environment = [tableState.environment];
    const after = tableState.cursors.at(-1);
    const { tenants } = await gql(
      `query Tenants($first: Int!, $after: String, $filter: TenantFilter) {
        tenants(first: $first, after: $after, filter: $filter) {
          totalCount
          pageInfo { hasNextPage endCursor }
          edges { node { id name environment status schemaVersion databases { ${serverField} ${driftField} status } } }
        } }`,
      { first: PAGE_SIZE, after, filter },
      { signal },
    );
    const page = tableState.cursors.length;
    const pages = Math.max(1, Math.ceil(tenants.totalCount / PAGE_SIZE));
    const headings = ['Name', 'Environment', 'Status', 'Version'];
    if (features.servers) headings.push('Server');
    if (features.drift) headings.push('Drift');
    const previous = h('button', { type: 'button', disabled: page === 1 }, 'Previous page');
    const next = h('button', { type: 'button', disabled: !tenants.pageInfo.hasNextPage }, 'Next page');
    previous.addEventListener('click', () => {
      tableState.cursors.pop();
      void load();
    });
    next.addEventListener('click', () => {
      tableState.cursors.push(tenants.pageInfo.endCursor);
      void load();
    });
    replace(
      body,
      h('p', null, `${formatCount(tenants.totalCount)} tenant(s) · page ${page} of ${pages}`),
      scrollTable(
        'Tenants',
        headings,
        tenants.edges.map(({ node }) => {
          const db = node.databases[0];
          return h(
            'tr',
            null,
            h('td', null, h('a', { href: tenantHref(node.name) }, node.name)),
            h('td', null, node.environment),
            h('td', null, badge(node.status)),
            h('td', null, node.schemaVersion ?? '—'),
            features.servers ? h('td', null, db?.server?.name ?? '—') : null,
            features.drift
              ? h(
                  'td',
                  null,
                  db?.fingerprint == null
                    ? 'not checked'
                    : db.fingerprint.matchesExpected
                      ? 'none'
                      : 'drifted',
                )
              : null,
          );
        }),
      ),
      h('div', { class: 'pager' }, previous, next),
    );
  }
  await load();
}

/** A tenant's page: its databases, migration history and pending migrations; rollback and delete. */
export async function renderTenant(view) {
  const { main, signal, params, canOperate, isAdmin } = view;
  const [name] = params;
  const { tenant } = await gql(
    `query Tenant($name: String!) {
      tenant(name: $name) {
        id name environment status schemaVersion createdAt deletedAt
        databases { isolation databaseName schemaName host port status schemaVersion lastError }
        migrationHistory { version name appliedAt executionMs checksumMatches }
        pendingMigrations { version name reversible transactional }
      }
    }`,
    { name },
    { signal },
  );
  if (!tenant) {
    replace(main, h('h1', null, 'Tenant not found'), alertBox(`No tenant is named "${name}".`));
    return;
  }
  const status = h('div', { 'aria-live': 'polite' });
  const actions = [];
  if (isAdmin && tenant.migrationHistory.length > 1 && !tenant.deletedAt) {
    actions.push(
      h('button', { type: 'button', 'data-action': 'rollback', onclick: () => rollback() }, 'Roll back…'),
    );
  }
  if (canOperate && !tenant.deletedAt) {
    actions.push(
      h(
        'button',
        { type: 'button', class: 'danger', 'data-action': 'delete', onclick: () => remove() },
        'Delete…',
      ),
    );
  }
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/tenants' }, 'Tenants'), ' / ', tenant.name),
    h('h1', null, tenant.name),
    h(
      'dl',
      { class: 'facts' },
      fact('Environment', tenant.environment),
      fact('Status', badge(tenant.status)),
      fact('Version', tenant.schemaVersion ?? '—'),
      fact('Created', formatTime(tenant.createdAt)),
      tenant.deletedAt ? fact('Deleted', formatTime(tenant.deletedAt)) : null,
    ),
    actions.length > 0 ? h('div', { class: 'actions' }, actions) : null,
    status,
    h('h2', null, 'Databases'),
    scrollTable(
      'Databases',
      ['Isolation', 'Database', 'Schema', 'Host', 'Status', 'Version', 'Last error'],
      tenant.databases.map((db) =>
        h(
          'tr',
          null,
          h('td', null, db.isolation),
          h('td', null, db.databaseName),
          h('td', null, db.schemaName ?? '—'),
          h('td', null, `${db.host}:${db.port}`),
          h('td', null, badge(db.status)),
          h('td', null, db.schemaVersion ?? '—'),
          h('td', { class: 'error-text' }, db.lastError ?? ''),
        ),
      ),
    ),
    h('h2', null, 'Pending migrations'),
    tenant.pendingMigrations.length === 0
      ? h('p', null, 'None: the tenant is at the latest version.')
      : scrollTable(
          'Pending migrations',
          ['Version', 'Name', 'Transactional', 'Reversible'],
          tenant.pendingMigrations.map((m) =>
            h(
              'tr',
              null,
              h('td', null, m.version),
              h('td', null, m.name),
              h('td', null, yesNo(m.transactional)),
              h('td', null, yesNo(m.reversible)),
            ),
          ),
        ),
    h('h2', null, 'Migration history'),
    tenant.migrationHistory.length === 0
      ? h('p', null, 'Nothing applied yet.')
      : scrollTable(
          'Migration history',
          ['Version', 'Name', 'Applied', 'Took', 'Checksum'],
          tenant.migrationHistory.map((m) =>
            h(
              'tr',
              null,
              h('td', null, m.version),
              h('td', null, m.name),
              h('td', null, formatTime(m.appliedAt)),
              h('td', { class: 'num' }, `${m.executionMs} ms`),
              h(
                'td',
                null,
                m.checksumMatches ? 'matches' : h('strong', { class: 'error-text' }, 'file changed (drift)'),
              ),
            ),
          ),
        ),
  );

  async function rollback() {
    // Down to any applied version below the current one.
    const choices = tenant.migrationHistory
      .map((m) => m.version)
      .slice(0, -1)
      .reverse();
    const versionSelect = select('rollback-version', choices, choices[0]);
    const answer = await confirmByName({
      title: `Roll back ${tenant.name}`,
      description:
        'Runs the down files of every migration above the chosen version, newest first, as a ROLLBACK run.',
      name: tenant.name,
      actionLabel: 'Roll back',
      fields: [
        {
          key: 'targetVersion',
          element: h(
            'div',
            null,
            h('label', { for: 'rollback-version' }, 'Roll back to version'),
            versionSelect,
          ),
          value: () => versionSelect.value,
        },
      ],
    });
    if (!answer) return;
    await act(async () => {
      const { startRollback } = await gql(
        `mutation Rollback($input: StartRollbackInput!) { startRollback(input: $input) {
          __typename ... on StartRollbackSuccess { run { id } } ... on Error { code message } } }`,
        {
          input: {
            targetVersion: answer.targetVersion,
            tenants: { ids: [tenant.id], status: TENANT_STATUSES },
          },
        },
      );
      location.hash = `#/runs/${encodeURIComponent(unwrap(startRollback).run.id)}`;
    });
  }

  async function remove() {
    const dropData = h('input', { id: 'drop-data', type: 'checkbox' });
    const answer = await confirmByName({
      title: `Delete ${tenant.name}`,
      description:
        'Deactivates the tenant. With "drop its data" (ADMIN) its schema or database is dropped for good.',
      name: tenant.name,
      actionLabel: 'Delete tenant',
      fields: isAdmin
        ? [
            {
              key: 'dropData',
              element: h(
                'div',
                { class: 'check' },
                dropData,
                h('label', { for: 'drop-data' }, 'Also drop its data'),
              ),
              value: () => dropData.checked,
            },
          ]
        : [],
    });
    if (!answer) return;
    await act(async () => {
      const { deleteTenant } = await gql(
        `mutation Delete($input: DeleteTenantInput!) { deleteTenant(input: $input) {
          __typename ... on DeleteTenantSuccess { tenant { id } } ... on Error { code message } } }`,
        { input: { id: tenant.id, confirmName: tenant.name, dropData: Boolean(answer.dropData) } },
      );
      unwrap(deleteTenant);
      location.hash = '#/tenants';
    });
  }

  async function act(fn) {
    try {
      await fn();
    } catch (error) {
      replace(status, alertBox(error.message));
    }
  }
}

function fact(term, value) {
  return h('div', null, h('dt', null, term), h('dd', null, value));
}

function yesNo(value) {
  return value ? 'yes' : 'no';
}

function select(id, values, selected) {
  return h(
    'select',
    { id },
    values.map((value) => h('option', { value, selected: value === selected }, value === '' ? 'Any' : value)),
  );
}

/** The console address of a tenant's page. */
export function tenantHref(name) {
  return `#/tenants/${encodeURIComponent(name)}`;
}
