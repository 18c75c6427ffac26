// The operator console: sign-in, a hash router and the shell around the views.
import { ApiError, gql, isAbort, isMissingField, session } from './api.js';
import { alertBox, h, replace } from './dom.js';
import { renderOverview, renderTenant, renderTenants } from './fleet.js';
import { renderRun, renderRuns } from './runs.js';

const ROUTES = [
  { pattern: /^#?\/?$/, view: renderOverview, nav: 'overview' },
  { pattern: /^#\/tenants$/, view: renderTenants, nav: 'tenants' },
  { pattern: /^#\/tenants\/(.+)$/, view: renderTenant, nav: 'tenants' },
  { pattern: /^#\/runs$/, view: renderRuns, nav: 'runs' },
  { pattern: /^#\/runs\/(.+)$/, view: renderRun, nav: 'runs' },
];

const root = document.getElementById('app');
let current = null;

boot();

async function boot() {
  if (!session.token) return showSignIn();
  try {
    const context = await loadContext();
    showShell(context);
  } catch (error) {
    session.token = null;
    showSignIn(error instanceof ApiError ? describeSignInError(error) : 'The service cannot be reached.');
  }
}

// The role decides which actions exist on the page; the API checks every one again.
async function loadContext() {
  const { viewer } = await gql('query Viewer { viewer { name role } }');
  const features = await probeFeatures();
  return {
    viewer,
    features,
    canOperate: viewer.role === 'OPERATOR' || viewer.role === 'ADMIN',
    isAdmin: viewer.role === 'ADMIN',
  };
}

// Later parts of the API (database servers, drift fingerprints) show up once the schema has them.
// Each probe is a typed query; a "Cannot query field" validation error means "not deployed".
async function probeFeatures() {
  const probe = async (query) => {
    try {
      await gql(query);
      return true;
    } catch (error) {
      if (isMissingField(error)) return false;
      throw error;
    }
  };
  const [servers, drift] = await Promise.all([
    probe('query ProbeServers { databaseServers { id } }'),
    probe('query ProbeDrift { schemaDrift { hash } }'),
  ]);
  return { servers, drift };
}

function describeSignInError(error) {
  if (error.code === 'UNAUTHENTICATED') return 'That token was not accepted (unknown or revoked).';
  return error.message;
}

function showSignIn(message) {
  document.title = 'Sign in · Tenant control plane';
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    testid: 'token-input',
    'aria-describedby': 'token-help',
  });
  const status = h('div', { 'aria-live': 'polite' }, message ? alertBox(message) : null);
  const submit = h('button', { type: 'submit', testid: 'login-submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in', novalidate: true },
    h('h1', null, 'Tenant control plane'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'hint' },
      'Paste an API token (or the bootstrap admin token). It is kept in this tab only and sent as an Authorization header.',
    ),
    submit,
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === '') {
      replace(status, alertBox('Paste a token first.'));
      input.focus();
      return;
    }
    submit.disabled = true;
    session.token = token;
    try {
      showShell(await loadContext());
    } catch (error) {
      session.token = null;
      submit.disabled = false;
      replace(
        status,
        alertBox(error instanceof ApiError ? describeSignInError(error) : 'The service cannot be reached.'),
      );
      input.focus();
    }
  });
  replace(root, h('main', { id: 'main', class: 'sign-in-page' }, form));
  input.focus();
}

function showShell(context) {
  const main = h('main', { id: 'main', tabindex: '-1' });
  const links = {
    overview: h('a', { href: '#/' }, 'Overview'),
    tenants: h('a', { href: '#/tenants' }, 'Tenants'),
    runs: h('a', { href: '#/runs' }, 'Runs'),
  };
  const signOut = h('button', { type: 'button', class: 'link-button' }, 'Sign out');
  signOut.addEventListener('click', () => {
    session.token = null;
    current?.abort();
    window.removeEventListener('hashchange', onRoute);
    location.hash = '';
    showSignIn();
  });
  replace(
    root,
    h('a', { class: 'skip-link', href: '#main', onclick: skipToMain }, 'Skip to content'),
    h(
      'header',
      { class: 'top' },
      h('span', { class: 'brand' }, 'Tenant control plane'),
      h(
        'nav',
        { 'aria-label': 'Main' },
        h(
          'ul',
          null,
          Object.values(links).map((link) => h('li', null, link)),
        ),
      ),
      h('span', { class: 'who' }, `${context.viewer.name} · ${context.viewer.role}`, ' ', signOut),
    ),
    main,
  );

  function skipToMain(event) {
    event.preventDefault();
    main.focus();
  }

  function onRoute() {
    current?.abort();
    const controller = new AbortController();
    current = controller;
    const hash = location.hash;
    const route = ROUTES.find((candidate) => candidate.pattern.test(hash)) ?? ROUTES[0];
    const params = (hash.match(route.pattern) ?? []).slice(1).map(decodeURIComponent);
    for (const [name, link] of Object.entries(links)) {
      if (name === route.nav) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    replace(main, h('p', { class: 'loading' }, 'Loading…'));
    const view = { main, signal: controller.signal, params, ...context };
    route.view(view).then(
      () => {
        if (!controller.signal.aborted) focusHeading(main);
      },
      (error) => {
        if (controller.signal.aborted || isAbort(error)) return;
        if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
          session.token = null;
          window.removeEventListener('hashchange', onRoute);
          showSignIn('Your token is no longer accepted; sign in again.');
          return;
        }
        replace(
          main,
          h('h1', { tabindex: '-1' }, 'Something went wrong'),
          alertBox(error.message ?? String(error)),
        );
      },
    );
  }
  window.addEventListener('hashchange', onRoute);
  onRoute();
}

// After a route change, move focus to the new page's heading so keyboard and screen-reader users
// start there (without scrolling a focused control out of view).
function focusHeading(main) {
  if (main.contains(document.activeElement) && document.activeElement !== main) return;
  const heading = main.querySelector('h1');
  if (!heading) return;
  heading.setAttribute('tabindex', '-1');
  heading.focus({ preventScroll: true });
  document.title = `${heading.textContent} · Tenant control plane`;
}
